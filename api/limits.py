"""Body-size limit as a pure ASGI middleware, so an oversized upload is refused while it streams in
(Content-Length or chunked) instead of after it has been buffered whole."""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemetry import audit


class _TooLarge(Exception):
    pass


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False  # h11 already rejects a non-numeric Content-Length
            if too_big:
                _log_rejected(scope, "Content-Length", declared)
                await _reject(send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            _log_rejected(scope, "streamed body", received)
            if not started:
                await _reject(send)


def _log_rejected(scope: Scope, measured_by: str, size: object) -> None:
    client = scope.get("client")
    audit.event(
        "body_size_rejected",
        logging.WARNING,
        path=scope.get("path"),
        peer=client[0] if client else None,
        measured_by=measured_by,
        size=size.decode("latin-1")[:20] if isinstance(size, bytes) else size,
    )


async def _reject(send: Send) -> None:
    body = json.dumps({"status": "rejected", "reason": "request body too large"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
