"""docker-compose.temporal-mtls.yml over the base file, rendered by the real Docker Compose v2: Temporal
requires client certificates, the service's own containers connect with them (settings accept the
paths), and the client key is mounted into those containers only."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from contracts.settings import Settings

from .conftest import REPO_ROOT
from .test_compose import AGENT_SERVICES, COMPOSE_FILE, _docker_compose

MTLS_FILE = REPO_ROOT / "docker-compose.temporal-mtls.yml"
CERTS = ("ca.crt", "server.crt", "server.key", "client.crt", "client.key")


@pytest.fixture(scope="module")
def mtls_compose(tmp_path_factory) -> dict:
    workdir = tmp_path_factory.mktemp("compose-mtls")
    for path in (COMPOSE_FILE, MTLS_FILE):
        shutil.copy(path, workdir / path.name)
    shutil.copy(REPO_ROOT / ".env.example", workdir / ".env")
    certs = workdir / ".data" / "temporal-tls"
    certs.mkdir(parents=True)
    for name in CERTS:
        (certs / name).write_text(f"placeholder {name}\n")
    result = subprocess.run(
        [_docker_compose(), "-f", COMPOSE_FILE.name, "-f", MTLS_FILE.name, "config", "--format", "json"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def secrets_of(service: dict) -> set[str]:
    return {s["source"] if isinstance(s, dict) else s for s in service.get("secrets", [])}


def test_temporal_requires_client_certificates(mtls_compose):
    temporal = mtls_compose["services"]["temporal"]["environment"]
    assert temporal["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    assert temporal["TEMPORAL_TLS_FRONTEND_CERT"] == "/run/secrets/temporal-server-cert"
    assert "--tls" in mtls_compose["services"]["temporal"]["healthcheck"]["test"]


@pytest.mark.parametrize("service", AGENT_SERVICES)
def test_the_service_connects_with_its_client_certificate(mtls_compose, service):
    environment = mtls_compose["services"][service]["environment"]
    settings = Settings(
        _env_file=None,
        temporal_tls=environment["TEMPORAL_TLS"],
        temporal_tls_ca=environment["TEMPORAL_TLS_CA"],
        temporal_tls_cert=environment["TEMPORAL_TLS_CERT"],
        temporal_tls_key=environment["TEMPORAL_TLS_KEY"],
    )
    assert settings.temporal_tls and settings.temporal_tls_key == "/run/secrets/temporal-client-key"
    assert environment["TEMPORAL_ADDRESS"] == "temporal:7233"  # the base file's, kept


def test_the_client_key_reaches_only_the_services_own_containers(mtls_compose):
    holders = {name for name, s in mtls_compose["services"].items() if "temporal-client-key" in secrets_of(s)}
    assert holders == {"temporal", "temporal-ui", *AGENT_SERVICES}
    assert "temporal-client-key" not in secrets_of(mtls_compose["services"]["postgresql"])
    assert not any("temporal-server-key" in secrets_of(mtls_compose["services"][s]) for s in AGENT_SERVICES)
