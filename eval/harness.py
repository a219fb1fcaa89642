"""Replay a corpus through the real service and collect what each review posted.

One stack for the whole run: the Temporal dev server, the GitLab stand-in, the worker and the API
(`devenv.stack.running_service`, as `make demo` and the flow tests use it). Each case becomes its own
project (base on `main`, head on a branch) whose MR reaches the API as a webhook; the harness waits
for that ReviewMR run, reads the agent's finding threads from the stand-in (inline positions, or the
`file:line` a fallback comment names), the run's tokens from its `run_review` activity result in
the workflow history, and the wall time from MR creation to the run's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from contracts.ids import review_id
from contracts.models import ReviewMRResult
from devenv.stack import AGENT, DEVELOPER, running_service, stack_settings
from devenv.temporal_server import TemporalDevServer
from eval.corpus import Case
from eval.scoring import CaseOutcome, Comment
from standins.gitlab import GitLabStandIn
from standins.model_server import Brain, ModelServer

FINDING_MARKER = re.compile(r"<!-- gitlab-copilot-agent:finding\b")
FALLBACK_WHERE = re.compile(r"_On `([^`]+):(\d+)`")
REVIEW_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible (or azure/anthropic) BYOK provider the reviews run against."""

    base_url: str
    model: str
    provider_type: str = "openai"
    api_key: str | None = None


def comments_of(discussions: Sequence[dict]) -> list[Comment]:
    """The agent's finding threads of one MR, as (file, line) at head (None: no location found)."""
    found = []
    for discussion in discussions:
        note = discussion["notes"][0]
        if note["author"]["username"] != AGENT or not FINDING_MARKER.search(note["body"]):
            continue
        position = note.get("position") or {}
        if position.get("new_line") is not None:
            found.append(Comment(position.get("new_path"), int(position["new_line"])))
        elif position.get("old_line") is not None:
            found.append(Comment(position.get("old_path"), int(position["old_line"])))
        elif match := FALLBACK_WHERE.search(note["body"].replace("\\", "")):
            found.append(Comment(match.group(1), int(match.group(2))))
        else:
            found.append(Comment(None, None))
    return found


async def run_review_tokens(client: Client, workflow_id: str) -> int:
    """Tokens (prompt + completion) the run's completed `run_review` activities reported, its
    ReviewBundle child workflows' included (a large MR is reviewed in bundles)."""
    scheduled: set[int] = set()
    children: list[str] = []
    tokens = 0
    converter = client.data_converter.payload_converter
    async for event in client.get_workflow_handle(workflow_id).fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            if event.activity_task_scheduled_event_attributes.activity_type.name == "run_review":
                scheduled.add(event.event_id)
        elif event.HasField("activity_task_completed_event_attributes"):
            attributes = event.activity_task_completed_event_attributes
            if attributes.scheduled_event_id in scheduled and attributes.result.payloads:
                (result,) = converter.from_payloads(list(attributes.result.payloads))
                tokens += int((result or {}).get("tokens_used") or 0)
        elif event.HasField("child_workflow_execution_started_event_attributes"):
            children.append(
                event.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
            )
    for child in children:
        tokens += await run_review_tokens(client, child)
    return tokens


async def _result(client: Client, workflow_id: str, timeout: float) -> ReviewMRResult:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def service_stack(
    work: Path, brain: Brain | None, endpoint: ModelEndpoint | None, **settings_overrides: object
) -> AsyncIterator[tuple[Client, GitLabStandIn]]:
    """Temporal, the GitLab stand-in, a model (the scripted `brain` or `endpoint`), worker and API."""
    if (brain is None) == (endpoint is None):
        raise ValueError("give exactly one of a scripted brain or a model endpoint")
    work.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (set-up, before anything runs)
    with contextlib.ExitStack() as stack:
        temporal = stack.enter_context(TemporalDevServer(log_file=work / "temporal.log"))
        gitlab = stack.enter_context(GitLabStandIn(work / "gitlab"))
        agent = gitlab.add_user(AGENT, name="Copilot Agent")
        gitlab.add_user(DEVELOPER, name="Developer")
        model = stack.enter_context(ModelServer(brain=brain)) if brain is not None else None
        overrides: dict[str, object] = dict(settings_overrides)
        if endpoint is not None:
            overrides |= {
                "copilot_provider_type": endpoint.provider_type,
                "copilot_provider_base_url": endpoint.base_url,
                "copilot_provider_api_key": endpoint.api_key,
                "copilot_model": endpoint.model,
            }
        settings = stack_settings(
            temporal_address=temporal.address,
            task_queue="eval",
            gitlab=gitlab,
            agent_token=agent.token,
            # only its base_url is read; the endpoint's settings above replace the provider's
            model=_BaseUrl(model.base_url if model is not None else endpoint.base_url),  # type: ignore[arg-type, union-attr]
            work=work / "runs",
            **overrides,
        )
        async with running_service(settings) as (client, api_url):
            gitlab.set_webhook(f"{api_url}/webhook", settings.gitlab_webhook_secret.get_secret_value())
            yield client, gitlab


@dataclass(frozen=True)
class _BaseUrl:
    base_url: str


async def review_case(client: Client, gitlab: GitLabStandIn, case: Case, *, prefix: str) -> CaseOutcome:
    project_path = f"{prefix}/{case.id}"
    project = gitlab.create_project(project_path, dict(case.base), members={DEVELOPER: 40, AGENT: 30})
    changes: dict[str, str | bytes | None] = {
        p: text for p, text in case.head.items() if case.base.get(p) != text
    }
    changes.update({p: None for p in case.deleted})
    gitlab.commit(project_path, "eval/head", changes, case.title, author=DEVELOPER)
    started = time.monotonic()
    mr = gitlab.create_mr(
        project_path, "eval/head", title=case.title, description=case.description, author=DEVELOPER
    )
    head = gitlab.mr_json(project_path, mr.iid)["sha"]
    workflow_id = review_id(project.id, mr.iid, head)
    result = await _result(client, workflow_id, REVIEW_TIMEOUT_S)
    seconds = time.monotonic() - started
    return CaseOutcome(
        case_id=case.id,
        clean=case.clean,
        expected=case.expected,
        comments=tuple(comments_of(gitlab.discussions(project_path, mr.iid))),
        tokens=await run_review_tokens(client, workflow_id),
        seconds=round(seconds, 3),
        status=result.status,
    )


async def replay_in(
    client: Client, gitlab: GitLabStandIn, cases: Sequence[Case], *, prefix: str
) -> list[CaseOutcome]:
    """Review every case once, concurrently (the worker's MAX_CONCURRENT_AGENT_RUNS bounds the agent
    runs); outcomes in corpus order. `prefix` is the stand-in group of this round's projects."""
    return list(await asyncio.gather(*(review_case(client, gitlab, c, prefix=prefix) for c in cases)))


async def replay(
    cases: Sequence[Case], *, brain: Brain | None = None, endpoint: ModelEndpoint | None = None
) -> list[CaseOutcome]:
    """One round of `cases` on a fresh stack."""
    with tempfile.TemporaryDirectory(prefix="copilot-eval-") as tmp:
        async with service_stack(Path(tmp), brain, endpoint) as (client, gitlab):
            return await replay_in(client, gitlab, cases, prefix="eval")
