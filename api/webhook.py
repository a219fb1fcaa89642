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

from api.intake_mr import handle_merge_request
from api.intake_note import handle_note
from api.starter import ignored
from telemetry import metrics

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
        return JSONResponse({"status": "rejected", "reason": "webhook secret not configured"}, 403)
    given = request.headers.get("x-gitlab-token", "")
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        return JSONResponse({"status": "rejected", "reason": "missing or invalid X-Gitlab-Token"}, 401)
    return None


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
    raw = await request.body()
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
