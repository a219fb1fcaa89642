"""POST /webhook: authenticate, parse, route by event kind to one intake handler each.

Answers (GitLab waits about 10 s and disables hooks that keep getting 4xx, so every answer is fast
and only genuine client errors are 4xx):
  no secret configured 403 · missing/wrong X-Gitlab-Token 401 · body over the limit 413 (middleware)
  · malformed JSON, JSON nested deeper than MAX_JSON_DEPTH, integers beyond 64 bits (Python refuses
  over 4,300 digits itself, and IDs that large exist nowhere) or a payload missing what its kind
  requires 400 · unhandled kinds and filtered
  events 200 {"status": "ignored", "reason"} · started 202 · duplicate 200 · Temporal down 503.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from api import ingress
from api.intake_mr import handle_merge_request
from api.intake_note import handle_note
from api.starter import ignored
from telemetry import audit, metrics

log = logging.getLogger(__name__)
router = APIRouter()

MAX_JSON_DEPTH = 64  # GitLab's payloads nest about 5 deep
Handler = Callable[[Request, dict[str, Any]], Awaitable[JSONResponse]]
HANDLERS: dict[str, Handler] = {
    "merge_request": handle_merge_request,
    "note": handle_note,
}


def _authorised(request: Request) -> JSONResponse | None:
    secret = request.app.state.settings.gitlab_webhook_secret
    if secret is None or not secret.get_secret_value():
        _auth_failed(request, "webhook secret not configured")
        return JSONResponse({"status": "rejected", "reason": "webhook secret not configured"}, 403)
    given = request.headers.get("x-gitlab-token")
    if given is None or not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        _auth_failed(request, "missing X-Gitlab-Token" if given is None else "invalid X-Gitlab-Token")
        return JSONResponse({"status": "rejected", "reason": "missing or invalid X-Gitlab-Token"}, 401)
    # A successful check is an audit event too, at DEBUG: at INFO it would be a log line per delivery
    # on the hot path (bench/bench_webhook_intake.py); failures are always logged.
    audit.event("audit.auth_attempt", logging.DEBUG, source="webhook", outcome="ok")
    return None


def _auth_failed(request: Request, reason: str) -> None:
    client, _ = ingress.scope_client(request.scope, request.app.state.trusted_proxies)
    audit.event(
        "audit.auth_failure",
        logging.WARNING,
        source="webhook",
        reason=reason,
        client=client,
        peer=request.client.host if request.client else None,
        event=request.headers.get("x-gitlab-event"),
    )


@router.post("/webhook")
async def webhook(request: Request) -> JSONResponse:
    response = await _intake(request)
    metrics.record_delivery(response.body)
    return response


def _rejected(reason: str) -> JSONResponse:
    return JSONResponse({"status": "rejected", "reason": reason}, 400)


def _too_deep_or_too_big(payload: Any) -> str:
    """Why a parsed body is refused ("" when it is not), checked without recursion."""
    stack = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            return "an integer in the body is beyond 64 bits"
    return ""


async def _intake(request: Request) -> JSONResponse:
    denied = _authorised(request)
    if denied is not None:
        return denied
    try:
        raw = await request.body()
    except ClientDisconnect:  # the sender gave up mid-body (its timeout): nothing to start, nobody reads this
        return _rejected("client disconnected before the body was complete")
    try:
        payload = json.loads(raw)
    except RecursionError:
        return _rejected(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, and integers over 4,300 digits
        return _rejected("body is not valid JSON")
    if problem := _too_deep_or_too_big(payload):
        return _rejected(problem)
    if not isinstance(payload, dict):
        return JSONResponse({"status": "rejected", "reason": "body must be a JSON object"}, 400)
    kind = payload.get("object_kind")
    if not isinstance(kind, str):
        return ignored("no object_kind in payload")
    handler = HANDLERS.get(kind)
    if handler is None:
        return ignored(f"unhandled event: {kind[:50]}")
    try:
        return await handler(request, payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return JSONResponse(
            {"status": "rejected", "reason": f"invalid {kind} event: {where}: {first['msg']}"[:300]}, 400
        )
