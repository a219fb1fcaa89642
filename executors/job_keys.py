"""What an agent Job holds instead of credentials: leases on the worker's Job proxy, and the key its
result container signs the result with. All derived from one worker key, so any worker replica (or
the worker that replaces a crashed one) verifies what another issued, with no shared state.

* A lease is `joblease.<claims>.<mac>`: base64url JSON claims (Job name, scope, repository, expiry)
  and their HMAC-SHA256. Scope `model` lets the agent container call the model through the proxy;
  scope `git` lets the clone container fetch (never push) the one repository it names. A lease is
  worthless after its expiry (the Job's deadline plus a margin) and outside the proxy, which only
  agent-job pods can reach (NetworkPolicy).
* The result key is HMAC(worker key, "result:" + Job name): it goes only to the Job's `result`
  container, which starts after the agent container has ended (see k8s_spec), so no agent process
  ever sees it; the worker recomputes it to verify the frame.

The worker key is K8S_JOB_KEY when set; else it is derived from the GitLab token (HMAC with a fixed
label), which every worker replica holds already and no Job ever sees, so replicas and restarted
workers agree with no extra configuration (rotating the token fails the Jobs in flight once, as
retried runs); without either, a random key of this process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from contracts.settings import Settings

PREFIX = "joblease"
SCOPES = ("model", "git")
_PROCESS_KEY = secrets.token_bytes(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Lease:
    job: str
    scope: str
    repo: str  # the real clone URL (scope git), "" otherwise
    expires: int
    credential: str = "default"  # which GitLab credential the proxy clones with (an alias, no token)


class JobKeys:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("K8S_JOB_KEY must be at least 16 bytes")
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> JobKeys:
        configured = settings.k8s_job_key.get_secret_value() if settings.k8s_job_key else ""
        if configured:
            return cls(configured.encode())
        token = settings.gitlab_token.get_secret_value() if settings.gitlab_token else ""
        if token:
            return cls(hmac.new(token.encode(), b"gitlab-copilot-agent/k8s-job-key", hashlib.sha256).digest())
        return cls(_PROCESS_KEY)

    def _mac(self, purpose: str, data: str) -> bytes:
        return hmac.new(self._key, f"{purpose}:{data}".encode(), hashlib.sha256).digest()

    def lease(
        self, job: str, scope: str, *, expires: int, repo: str = "", credential: str = "default"
    ) -> str:
        if scope not in SCOPES:
            raise ValueError(f"unknown lease scope {scope!r}")
        data = {"job": job, "scope": scope, "repo": repo, "exp": expires, "cred": credential}
        claims = _b64(json.dumps(data).encode())
        return f"{PREFIX}.{claims}.{_b64(self._mac('lease', claims))}"

    def verify(self, token: str, scope: str, *, now: float | None = None) -> Lease | None:
        """The lease `token` grants for `scope`, or None (forged, expired, other scope, malformed)."""
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, claims, mac = parts
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac("lease", claims)):
                return None
            data = json.loads(_unb64(claims))
            lease = Lease(
                str(data["job"]), str(data["scope"]), str(data["repo"]), int(data["exp"]),
                str(data.get("cred", "default")),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            return None
        if lease.scope != scope or lease.expires < (time.time() if now is None else now):
            return None
        return lease

    def result_key(self, job: str) -> str:
        """The key the Job's result container signs with (hex; it travels as an env value)."""
        return self._mac("result", job).hex()
