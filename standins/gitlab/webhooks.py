"""Webhook delivery in a background thread, recorded but never allowed to fail the caller."""

from __future__ import annotations

import http.client
import json
import queue
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

from standins.gitlab.models import WebhookDelivery

TIMEOUT_S = 10  # GitLab gives a receiver about this long


class WebhookSender:
    def __init__(self) -> None:
        self.url: str | None = None
        self.secret: str | None = None
        self.deliveries: list[WebhookDelivery] = []
        self._queue: queue.Queue[WebhookDelivery | None] = queue.Queue()
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="gitlab-standin-hooks", daemon=True)
        self._thread.start()

    def configure(self, url: str | None, secret: str | None) -> None:
        self.url, self.secret = url, secret

    def send(self, event: str, payload: dict[str, Any]) -> None:
        if not self.url:
            return
        delivery = WebhookDelivery(event=event, payload=payload)
        with self._idle:
            self._pending += 1
        self.deliveries.append(delivery)
        self._queue.put(delivery)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery has been attempted (tests use this instead of sleeps)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=TIMEOUT_S + 1)

    def _run(self) -> None:
        while (delivery := self._queue.get()) is not None:
            try:
                self._deliver(delivery)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, delivery: WebhookDelivery) -> None:
        url = self.url
        if not url:
            delivery.error = "no webhook configured"
            return
        event_uuid = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitLab/17.0.0-standin",
            "X-Gitlab-Event": delivery.event,
            "X-Gitlab-Event-UUID": event_uuid,
            "X-Gitlab-Webhook-UUID": event_uuid,
            "X-Gitlab-Instance": "http://gitlab.standin",
            # Stays the same on redelivery in GitLab; each delivery here is a first attempt.
            "Idempotency-Key": event_uuid,
        }
        if self.secret:
            headers["X-Gitlab-Token"] = self.secret
        # http.client keeps header names as written (urllib would capitalize them).
        target = urlsplit(url)
        if target.scheme != "http" or not target.hostname:
            delivery.error = f"unsupported webhook URL {url!r}"
            return
        path = (target.path or "/") + (f"?{target.query}" if target.query else "")
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=TIMEOUT_S)
        try:
            conn.request("POST", path, body=json.dumps(delivery.payload).encode(), headers=headers)
            response = conn.getresponse()
            response.read()
            delivery.status = response.status
        except (OSError, http.client.HTTPException) as exc:
            delivery.error = repr(exc)
        finally:
            conn.close()
