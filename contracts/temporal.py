"""How every process of the service reaches Temporal: one place for address, TLS, API key, the
pydantic data converter and the search attributes the workflows set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig

from contracts.codec import codec_from_settings, with_codec
from contracts.settings import Settings

# Custom search attributes: registered by `make temporal` / `python worker.py bootstrap`, set by the
# workflows, so operators can filter runs by project, MR and Jira key in the Web UI.
GITLAB_PROJECT = SearchAttributeKey.for_keyword("GitLabProject")
MERGE_REQUEST_IID = SearchAttributeKey.for_int("MergeRequestIID")
HEAD_SHA = SearchAttributeKey.for_keyword("HeadSHA")
JIRA_ISSUE_KEY = SearchAttributeKey.for_keyword("JiraIssueKey")
TRIGGER_SOURCE = SearchAttributeKey.for_keyword("TriggerSource")
# Set on an MRDiscussion once it is admitted to run the agent: what the answer-rate limits count.
GITLAB_USER = SearchAttributeKey.for_keyword("GitLabUser")
# Set by ImplementIssue's plan gate: waiting, approved, changes-requested, expired, rejected,
# not-required. `PlanApproval = 'waiting'` lists every issue waiting for a person's decision.
PLAN_APPROVAL = SearchAttributeKey.for_keyword("PlanApproval")
SEARCH_ATTRIBUTES = (
    GITLAB_PROJECT,
    MERGE_REQUEST_IID,
    HEAD_SHA,
    JIRA_ISSUE_KEY,
    TRIGGER_SOURCE,
    GITLAB_USER,
    PLAN_APPROVAL,
)

# The API answers GitLab's webhooks, which time out after 10 s (and hooks that keep failing get
# disabled): when Temporal is unreachable it must say 503 at once. The SDK's defaults retry a
# failing call for up to 10 s (measured: 6.5-9.1 s to a 503 after the server went away), so a
# fail-fast client bounds a TCP connect to 1 s and the SDK's own retries to ~1 s in all; the
# caller's deadline does the rest (api/starter.py). Workers keep the patient defaults.
FAIL_FAST_CONNECT_TIMEOUT = timedelta(seconds=1)
FAIL_FAST_RETRY = RetryConfig(
    initial_interval_millis=100,
    multiplier=2.0,
    max_interval_millis=400,
    max_elapsed_time_millis=1000,
    max_retries=3,
)


def _tls(settings: Settings) -> TLSConfig | bool:
    if not (settings.temporal_tls or settings.temporal_tls_cert or settings.temporal_api_key):
        return False
    read = lambda name: Path(name).read_bytes() if name else None  # noqa: E731
    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        client_cert=read(settings.temporal_tls_cert),
        client_private_key=read(settings.temporal_tls_key),
    )


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
    fail_fast: bool = False,
    tracing: Interceptor | None = None,
) -> Client:
    """Connect a client. `lazy=True` lets the API start while Temporal is still down (/ready says so);
    `fail_fast=True` (the API) gives up on an unreachable server within about a second.

    The OpenTelemetry TracingInterceptor is always on: it carries the caller's trace into workflows
    and activities (a worker built on this client inherits it). `runtime` is a measured SDK Runtime
    (telemetry.temporal_sdk); None uses the SDK's default, unmeasured one. `tracing` replaces the
    TracingInterceptor with a subclass of it (the API's: api/request_telemetry.py)."""
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=_tls(settings),
        data_converter=with_codec(pydantic_data_converter, codec_from_settings(settings)),
        interceptors=[tracing or TracingInterceptor(), *interceptors],
        lazy=lazy,
        runtime=runtime,
        retry_config=FAIL_FAST_RETRY if fail_fast else None,
        connect_timeout=FAIL_FAST_CONNECT_TIMEOUT if fail_fast else None,
    )


def review_search_attributes(
    project_id: int, mr_iid: int, head_sha: str | None, trigger: str
) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(GITLAB_PROJECT, str(project_id)),
        SearchAttributePair(MERGE_REQUEST_IID, mr_iid),
        SearchAttributePair(TRIGGER_SOURCE, trigger),
    ]
    if head_sha:
        pairs.append(SearchAttributePair(HEAD_SHA, head_sha))
    return TypedSearchAttributes(pairs)


def agent_task_queue(task_queue: str) -> str:
    """Agent runs get a task queue of their own, so their concurrency and start rate are bounded apart
    from GitLab/Jira calls (worker.py serves it with MAX_CONCURRENT_AGENT_RUNS slots)."""
    return f"{task_queue}-agent"
