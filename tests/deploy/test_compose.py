"""docker-compose.temporal.yml: valid Compose Spec, the whole stack, ordered start-up, secrets from .env."""

from __future__ import annotations

import compose_spec
import pytest
import yaml

from contracts.settings import Settings

from .conftest import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.temporal.yml"
AGENT_SERVICES = ("bootstrap", "api", "worker")
SETTINGS_ENV_NAMES = {name.upper() for name in Settings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict:
    text = COMPOSE_FILE.read_text()
    parsed = compose_spec.PyCompose.from_yaml(text)
    parsed.validate()
    assert "version" not in yaml.safe_load(text), "the Compose Spec needs no version key"
    return parsed.to_dict()


def test_the_whole_stack_is_there(compose):
    assert set(compose["services"]) == {"postgresql", "temporal", "temporal-ui", *AGENT_SERVICES}


def test_images_are_pinned(compose):
    for name, service in compose["services"].items():
        image = service["image"]
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: {image}"
    assert compose["services"]["temporal"]["image"].startswith("temporalio/auto-setup:")


def test_start_up_waits_on_health(compose):
    services = compose["services"]
    assert services["temporal"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert services["bootstrap"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["bootstrap"]["condition"] == "service_completed_successfully"
    for name in ("postgresql", "temporal", "api"):
        assert services[name]["healthcheck"]["test"], name
    assert "/ready" in " ".join(services["api"]["healthcheck"]["test"])


def test_agent_services_take_secrets_from_env_file_only(compose):
    for name in AGENT_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] in (".env", [".env"], [{"path": ".env"}]), name
        environment = service["environment"]
        assert set(environment) <= SETTINGS_ENV_NAMES, name
        assert not any(key.endswith(("TOKEN", "SECRET", "API_KEY")) for key in environment), name


def test_agent_services_run_hardened(compose):
    for name in AGENT_SERVICES:
        service = compose["services"][name]
        assert service["user"] == "1000:1000"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    assert compose["services"]["worker"]["environment"]["TASK_EXECUTOR"] == "local"


def test_commands_match_the_image_contract(compose):
    services = compose["services"]
    assert services["bootstrap"]["command"] == ["python", "worker.py", "bootstrap"]
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert services["api"]["command"][:2] == ["uvicorn", "api.app:create_app"]
