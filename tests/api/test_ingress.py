"""Webhook ingress controls: WEBHOOK_IP_ALLOWLIST behind TRUSTED_PROXIES, the path allowlist, and the
audit and rejection log lines (api/ingress.py, telemetry/audit.py).

The attack tests send from 127.0.0.1 through a real uvicorn server (started, as deployed, without
uvicorn's own proxy-header rewriting), so the peer the API sees is the real one."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from pydantic import ValidationError

from api.app import create_app
from api.ingress import client_address, networks, parse_address
from contracts.settings import REPO_ROOT, Settings
from devenv.uvicorn_thread import UvicornThread

SECRET = "test-webhook-secret"
IGNORED_EVENT = {"object_kind": "push"}  # authenticated and answered 200 "ignored": starts nothing
LOCAL = networks(["127.0.0.1/32"])


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


# --- who the client is -----------------------------------------------------------------------------
def test_an_untrusted_peer_is_the_client_whatever_its_x_forwarded_for_says():
    assert client_address("203.0.113.5", [b"10.0.0.1"], LOCAL) == (ip("203.0.113.5"), "")
    assert client_address("203.0.113.5", [b"10.0.0.1"], ()) == (ip("203.0.113.5"), "")


def test_behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client():
    trusted = networks(["127.0.0.1/32", "10.0.0.0/8"])
    # The client wrote "192.0.2.1" itself; the edge proxy 10.1.1.1 appended what it saw: 198.51.100.7.
    chain = [b"192.0.2.1, 198.51.100.7, 10.1.1.1"]
    assert client_address("127.0.0.1", chain, trusted) == (ip("198.51.100.7"), "")
    # Several headers are one list, in order.
    assert client_address("127.0.0.1", [b"192.0.2.1", b"198.51.100.7"], trusted) == (ip("198.51.100.7"), "")
    # Every hop trusted: the leftmost is the client. No header: the proxy itself is the client.
    assert client_address("127.0.0.1", [b"10.2.2.2, 10.1.1.1"], trusted) == (ip("10.2.2.2"), "")
    assert client_address("127.0.0.1", [], trusted) == (ip("127.0.0.1"), "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001:db8::7", "2001:db8::7"),
        ("[2001:db8::7]", "2001:db8::7"),
        ("[2001:db8::7]:443", "2001:db8::7"),
        ("192.0.2.1:5678", "192.0.2.1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # an IPv4 peer on a dual-stack socket
        (" 192.0.2.1 ", "192.0.2.1"),
    ],
)
def test_address_forms_proxies_write(text, expected):
    assert parse_address(text) == ip(expected)


@pytest.mark.parametrize(
    "hops",
    [
        "unknown",
        "_hidden",
        "192.0.2.1, not-an-ip",
        "",
        "[2001:db8::7",
        "[2001:db8::7]x",
        "1.2.3.4.5",
        "::1::2",
    ],
)
def test_a_malformed_x_forwarded_for_from_a_trusted_proxy_leaves_the_client_unknown(hops):
    assert client_address("127.0.0.1", [hops.encode()], LOCAL) == (None, "malformed X-Forwarded-For")


def test_an_oversized_x_forwarded_for_leaves_the_client_unknown():
    long = ", ".join(["192.0.2.1"] * 500).encode()
    assert client_address("127.0.0.1", [long], LOCAL) == (None, "X-Forwarded-For too long")
    many = ",".join(["1.1.1.1"] * 40).encode()
    assert client_address("127.0.0.1", [many], LOCAL) == (None, "X-Forwarded-For has too many hops")


def test_cidr_settings_are_validated_and_normalised():
    settings = Settings(
        _env_file=None, webhook_ip_allowlist="34.74.90.64/28, 2001:DB8::/32,192.0.2.9", trusted_proxies=""
    )
    assert settings.webhook_ip_allowlist == ["34.74.90.64/28", "2001:db8::/32", "192.0.2.9/32"]
    assert settings.trusted_proxies == []
    with pytest.raises(ValidationError, match="not an IP address or CIDR: 'gitlab.com'"):
        Settings(_env_file=None, webhook_ip_allowlist="10.0.0.0/8,gitlab.com")


# --- the live API ----------------------------------------------------------------------------------
@contextmanager
def api(base_settings: Settings, **ingress: object) -> Iterator[httpx.Client]:
    settings = Settings(  # validated as values from the environment are
        _env_file=None,
        temporal_address=base_settings.temporal_address,
        temporal_task_queue=base_settings.temporal_task_queue,
        gitlab_webhook_secret=SECRET,
        gitlab_agent_username="copilot-agent",
        work_dir=base_settings.work_dir,
        **ingress,
    )
    with UvicornThread(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


def deliver(http: httpx.Client, forwarded: str | None = None, token: str = SECRET) -> httpx.Response:
    headers = {"X-Gitlab-Token": token}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return http.post("/webhook", json=IGNORED_EVENT, headers=headers)


def test_gitlab_behind_the_trusted_proxy_passes_and_spoofed_hops_do_not(base_settings, caplog):
    caplog.set_level(logging.INFO, logger="audit")
    with api(
        base_settings, webhook_ip_allowlist="34.74.90.64/28,2001:db8::/32", trusted_proxies="127.0.0.1"
    ) as http:
        assert deliver(http, "34.74.90.70").json()["status"] == "ignored"
        assert deliver(http, "[2001:db8::7]:443").json()["status"] == "ignored"
        # The attacker puts GitLab's address first; the proxy appends the attacker's real one.
        spoofed = deliver(http, "34.74.90.70, 198.51.100.7")
        assert spoofed.status_code == 403 and spoofed.json()["status"] == "rejected"
        assert deliver(http, None).status_code == 403  # the proxy's own address is not GitLab's
        assert deliver(http, "unknown").status_code == 403
        assert deliver(http, ", ".join(["34.74.90.70"] * 600)).status_code == 403
    rejected = [m for m in caplog.messages if m.startswith("webhook_ip_rejected")]
    assert len(rejected) == 4
    assert "client=198.51.100.7 peer=127.0.0.1" in rejected[0]
    assert 'reason="malformed X-Forwarded-For"' in rejected[2]
    assert 'reason="X-Forwarded-For too long"' in rejected[3]


def test_x_forwarded_for_from_an_untrusted_peer_is_never_believed(base_settings):
    # The API's peer (127.0.0.1) is not a trusted proxy: its X-Forwarded-For is ignored both ways.
    with api(base_settings, webhook_ip_allowlist="34.74.90.64/28", trusted_proxies="10.0.0.0/8") as http:
        assert deliver(http, "34.74.90.70").status_code == 403
    with api(base_settings, webhook_ip_allowlist="127.0.0.0/8", trusted_proxies="") as http:
        assert deliver(http, "198.51.100.7").json()["status"] == "ignored"


def test_the_allowlist_guards_the_webhook_only_and_an_empty_one_allows_all(base_settings):
    with api(base_settings, webhook_ip_allowlist="34.74.90.64/28") as http:
        assert http.get("/health").status_code == 200
        assert deliver(http).status_code == 403
    with api(base_settings) as http:
        assert deliver(http, "198.51.100.7").json()["status"] == "ignored"


def test_unknown_paths_are_404_and_logged(base_settings, caplog):
    caplog.set_level(logging.INFO, logger="audit")
    with api(base_settings) as http:
        assert http.get("/admin/../../etc/passwd").status_code == 404
        assert http.post("/config/reload").status_code == 404
        assert http.get("/docs").status_code == 404  # ENABLE_DOCS is off
        assert http.get("/health").status_code == 200
    rejected = [m for m in caplog.messages if m.startswith("path_rejected")]
    assert len(rejected) == 3
    assert rejected[1] == "path_rejected method=POST path=/config/reload peer=127.0.0.1"


def test_failed_webhook_auth_is_an_audit_event_without_the_token(base_settings, caplog):
    caplog.set_level(logging.DEBUG, logger="audit")
    with api(base_settings, trusted_proxies="127.0.0.1") as http:
        assert deliver(http, "198.51.100.7", token="glpat-guessed-token-0123456789").status_code == 401
        assert http.post("/webhook", json=IGNORED_EVENT).status_code == 401
        assert deliver(http).status_code == 200
    failures = [m for m in caplog.messages if m.startswith("audit.auth_failure")]
    assert failures == [
        'audit.auth_failure source=webhook reason="invalid X-Gitlab-Token" client=198.51.100.7 peer=127.0.0.1',
        'audit.auth_failure source=webhook reason="missing X-Gitlab-Token" client=127.0.0.1 peer=127.0.0.1',
    ]
    assert "audit.auth_attempt source=webhook outcome=ok" in caplog.messages
    assert not any("guessed" in m or SECRET in m for m in caplog.messages)


def test_an_oversized_body_is_logged_as_body_size_rejected(base_settings, caplog):
    caplog.set_level(logging.INFO, logger="audit")
    with api(base_settings, max_webhook_body_bytes=2048) as http:
        assert (
            http.post("/webhook", content=b"x" * 4096, headers={"X-Gitlab-Token": SECRET}).status_code == 413
        )
    assert any(
        m.startswith("body_size_rejected path=/webhook peer=127.0.0.1 measured_by=Content-Length size=4096")
        for m in caplog.messages
    )


def test_every_deployed_api_command_turns_uvicorns_proxy_headers_off():
    # uvicorn would otherwise rewrite the peer from X-Forwarded-For for 127.0.0.1 before the API sees
    # it, and a local proxy could then smuggle any address past WEBHOOK_IP_ALLOWLIST.
    for path in (
        "Dockerfile",
        "docker-compose.temporal.yml",
        "helm/gitlab-copilot-agent/templates/api-deployment.yaml",
        "devenv/run.py",
        "devenv/worker_process.py",
    ):
        text = (REPO_ROOT / path).read_text()
        assert "api.app:create_app" in text or "app:" in text
        assert "--no-proxy-headers" in text, path
