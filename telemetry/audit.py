"""Audit and security events: one log line each, `<event> key=value ...`, on the `audit` logger.

Names as the seed service had them, so SIEM rules keep matching: `audit.auth_attempt`,
`audit.auth_failure`, `audit.api_call`, and the ingress rejections `webhook_ip_rejected`,
`path_rejected`, `body_size_rejected`. The line goes through the same JSON formatter and secret
redaction as every other log line; callers never pass a credential, only addresses, paths, statuses
and reasons. Values an attacker chooses (a path, an X-Forwarded-For) are cut short and quoted, so
they can neither forge another field nor flood a line.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("audit")
_MAX_VALUE = 200
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:/_-[]@+")


def _value(value: object) -> str:
    text = str(value)
    if len(text) > _MAX_VALUE:
        text = text[:_MAX_VALUE] + "..."
    if text and set(text) <= _PLAIN:
        return text
    return json.dumps(text, ensure_ascii=True)  # spaces, quotes, '=', control characters: quoted


def event(name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log one audit or security event (nothing is formatted when the level is off)."""
    if not log.isEnabledFor(level):
        return
    parts = [name, *(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)]
    log.log(level, " ".join(parts))
