"""Flow-test fixtures: the GitLab stand-in with an agent user, a developer and a sample project, the
scripted model server, and the service (worker + API) wired to them and to the real Temporal."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import pytest

from contracts.settings import Settings
from devenv.stack import AGENT, DEVELOPER, Stack, running_service, stack_settings
from standins.gitlab import GitLabStandIn
from standins.model_server import ChatRequest, ModelServer, Reply, ScriptedBrain

SAMPLE_FILES = {
    "README.md": "# Sample\n",
    "app/calc.py": "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
    "app/util.py": "import os\n\n\ndef home():\n    return os.environ.get('HOME')\n",
}


class SwitchableBrain:
    """The model server's brain, replaceable per test while the server keeps running."""

    def __init__(self) -> None:
        self.brain = ScriptedBrain()

    def __call__(self, request: ChatRequest) -> Reply:
        return self.brain(request)


@dataclass
class Users:
    agent_token: str
    dev_token: str


@pytest.fixture
def gitlab(tmp_path) -> Iterator[GitLabStandIn]:
    with GitLabStandIn(tmp_path / "gitlab") as server:
        yield server


@pytest.fixture
def users(gitlab) -> Users:
    agent = gitlab.add_user(AGENT, name="Copilot Agent")
    dev = gitlab.add_user(DEVELOPER, name="Dev Eloper")
    gitlab.add_user("reporter", name="Rep Orter")
    # A unique file per test makes every SHA unique, so workflow IDs never collide across tests
    # sharing the session's Temporal server.
    files = {**SAMPLE_FILES, ".test-id": uuid.uuid4().hex}
    gitlab.create_project("group/app", files, members={AGENT: 30, DEVELOPER: 30, "reporter": 20})
    return Users(agent.token, dev.token)


@pytest.fixture(scope="session")
def brain() -> SwitchableBrain:
    return SwitchableBrain()


@pytest.fixture(scope="session")
def model(brain) -> Iterator[ModelServer]:
    with ModelServer(brain=brain) as server:
        yield server


@pytest.fixture
def settings_overrides() -> dict:
    return {}


@pytest.fixture
def make_settings(temporal_server, task_queue, gitlab, users, model, tmp_path) -> Callable[..., Settings]:
    """Settings wired to this test's Temporal queue, GitLab stand-in, agent user and model server."""

    def build(**overrides: object) -> Settings:
        return stack_settings(
            temporal_address=temporal_server.address,
            task_queue=task_queue,
            gitlab=gitlab,
            agent_token=users.agent_token,
            model=model,
            work=tmp_path / "work",
            **overrides,
        )

    return build


@pytest.fixture
async def stack(gitlab, model, brain, make_settings, settings_overrides) -> AsyncIterator[Stack]:
    brain.brain = ScriptedBrain()
    model.requests.clear()
    settings = make_settings(**settings_overrides)
    async with running_service(settings) as (client, api_url):
        yield Stack(settings=settings, client=client, gitlab=gitlab, model=model, api_url=api_url)
