"""Hidden markers in the notes the agent writes, so every write can find its own earlier effect.

A marker is an HTML comment GitLab does not render, on the last line of the note:
`<!-- gitlab-copilot-agent:KIND k=v k=v sig=<mac> -->`. Values are restricted to `[A-Za-z0-9._:/-]`.

Only the service may make one that counts (docs/adr/0014-authenticated-markers.md):
- `parse` reads only the note's trailing marker, and only when it is of the kind asked for, so a
  marker the model copied into a finding body (or anything else in the text) is never read;
- `sig` is an HMAC-SHA256 (first 128 bits) over the kind and the values, with the service's marker
  key (MARKER_KEY, else derived from GITLAB_TOKEN; `use_keys` is called once by the worker), so an
  invented or altered marker does not verify;
- a trailing marker without `sig` is from a version before signing: `parse` accepts it for the
  kinds that only make writes idempotent (`LEGACY_KINDS`), never for the summary, whose
  `last_reviewed_sha` decides what the next review reads (so each MR gets one full review after
  the upgrade);
- `count_rejected` counts refused markers in `REJECTED` by reason (review memory calls it for every
  agent note it reads; the worker logs and exports the counts as a metric).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter
from collections.abc import Iterable, Mapping

PREFIX = "gitlab-copilot-agent"
_VALUE = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")
_MARKER = re.compile(r"<!-- " + re.escape(PREFIX) + r":([a-z-]+)((?: [a-z_]+=[A-Za-z0-9._:/-]+)*) -->")
_TRAILING = re.compile(_MARKER.pattern + r"\s*\Z")
SIG = "sig"

SUMMARY = "summary"
FINDING = "finding"
FAILURE = "failure"
RESOLUTION = "resolution"
REPLY = "reply"
LIMIT = "limit"  # a spend or role limit told to the MR once per key
IMPLEMENT_ANSWER = "implement-answer"  # the implementer's answer to a finding on its own MR
LEGACY_KINDS = frozenset({FINDING, FAILURE, RESOLUTION, REPLY, "implement"})

REJECTED: Counter[str] = Counter()  # reason -> markers refused by `parse` in this process
_signing_key: bytes | None = None
_verify_keys: list[bytes] = []


def derive_key(secret: str, purpose: str = "marker key v1") -> bytes:
    """A 32-byte key for markers from a service secret (never the secret itself)."""
    return hmac.new(secret.encode(), f"{PREFIX} {purpose}".encode(), hashlib.sha256).digest()


def keys_from(marker_key: str, gitlab_token: str) -> list[bytes]:
    """The marker keys of a configuration: MARKER_KEY's entries (the first signs), then the key
    derived from GITLAB_TOKEN, which keeps verifying notes signed before MARKER_KEY was set."""
    keys = [derive_key(k.strip()) for k in marker_key.split(",") if k.strip()]
    return keys + ([derive_key(gitlab_token, "marker key from the GitLab token v1")] if gitlab_token else [])


def use_keys(keys: Iterable[bytes]) -> None:
    """Sign with the first of `keys`; verify with any of them (and any configured before, so one
    process serving several configurations, as tests do, reads what each of them wrote)."""
    global _signing_key
    keys = [k for k in keys if k]
    if not keys:
        raise ValueError("at least one marker key is needed")
    _signing_key = keys[0]
    for key in keys:
        if key not in _verify_keys:
            _verify_keys.append(key)


def _mac(key: bytes, kind: str, pairs: list[tuple[str, str]]) -> str:
    message = "\n".join([kind, *(f"{k}={v}" for k, v in pairs)]).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def marker(kind: str, **values: str) -> str:
    if _signing_key is None:
        raise RuntimeError("marker keys are not configured (markers.use_keys)")
    pairs = []
    for key, value in values.items():
        if key == SIG:
            raise ValueError(f"'{SIG}' is reserved for the marker's signature")
        if not _VALUE.match(value):
            raise ValueError(f"marker value for {key} has characters outside [A-Za-z0-9._:/-]")
        pairs.append((key, value))
    pairs.append((SIG, _mac(_signing_key, kind, pairs)))
    return f"<!-- {PREFIX}:{kind}{''.join(f' {k}={v}' for k, v in pairs)} -->"


def _verified(kind: str, pairs: list[tuple[str, str]]) -> tuple[dict[str, str] | None, str]:
    values = [(k, v) for k, v in pairs if k != SIG]
    given = [v for k, v in pairs if k == SIG]
    if not given:
        return (dict(values), "") if kind in LEGACY_KINDS else (None, "unsigned")
    if len(given) == 1 and pairs[-1][0] == SIG:
        for key in _verify_keys:
            if hmac.compare_digest(_mac(key, kind, values), given[0]):
                return dict(values), ""
    return None, "bad_signature"


def read(body: str) -> tuple[str | None, dict[str, str] | None, str]:
    """(kind, values, problem) of `body`'s own trailing marker. `values` is None when there is no
    authentic one; `problem` then says why ("" when the body simply has none): "unsigned",
    "bad_signature", or "not_trailing" for a marker inside the text (copied: never read)."""
    text = body or ""
    match = _TRAILING.search(text)
    inside = _MARKER.findall(text[: match.start()] if match else text)
    if match is None:
        return None, None, "not_trailing" if inside else ""
    kind = match.group(1)
    pairs = [tuple(pair.split("=", 1)) for pair in match.group(2).split()]
    values, problem = _verified(kind, pairs)  # type: ignore[arg-type]
    return kind, values, problem or ("not_trailing" if inside else "")


def count_rejected(body: str) -> str:
    """Count (in REJECTED) and return the problem of `body`'s markers, "" when there is none."""
    problem = read(body)[2]
    if problem:
        REJECTED[problem] += 1
    return problem


def parse(body: str, kind: str) -> dict[str, str] | None:
    """The values of `body`'s own trailing marker when it is of `kind` and authentic, else None."""
    found, values, _ = read(body)
    return values if found == kind else None


def parse_signed(body: str, kind: str) -> dict[str, str] | None:
    """Like `parse`, without the legacy allowance: for markers that decide something (a finding
    verified as fixed), not only make a write idempotent."""
    match = _TRAILING.search(body or "")
    if match is None or f" {SIG}=" not in match.group(2):
        return None
    return parse(body, kind)


def has(body: str, kind: str, **expected: str) -> bool:
    values = parse(body, kind)
    return values is not None and all(values.get(k) == v for k, v in expected.items())


def with_marker(text: str, kind: str, values: Mapping[str, str]) -> str:
    return f"{text.rstrip()}\n\n{marker(kind, **values)}"


def seal(purpose: str, data: bytes) -> str:
    """A MAC (hex, 128 bits) over `data` for `purpose` with the signing key: authenticates data the
    service stores in GitLab beside a marker (the finding ledger in the summary note)."""
    if _signing_key is None:
        raise RuntimeError("marker keys are not configured (markers.use_keys)")
    return hmac.new(_signing_key, purpose.encode() + b"\n" + data, hashlib.sha256).hexdigest()[:32]


def unsealed(purpose: str, data: bytes, mac: str) -> bool:
    """Whether `mac` is `seal(purpose, data)` under any configured key."""
    return any(
        hmac.compare_digest(
            hmac.new(key, purpose.encode() + b"\n" + data, hashlib.sha256).hexdigest()[:32], mac
        )
        for key in _verify_keys
    )
