"""The one configuration model of the service, read from the environment and `.env`.

Variable names follow the seed where it had them (GITLAB_URL, JIRA_PROJECT_MAP, ...), so an operator
can carry an existing `.env` over. Secrets are `SecretStr`: they print as `**********`, and
`secret_values()` lists them for the log redaction filter and the canary tests.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import platform
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

from contracts.project_map import DEFAULT_CREDENTIAL, Binding, ProjectMap, ProjectSettings, parse_project_map

REPO_ROOT = Path(__file__).resolve().parent.parent
# platform.machine() -> the CPU name in npm's platform packages (@github/copilot-<os>-<cpu>)
_NPM_CPU = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def bundled_copilot(root: Path = REPO_ROOT) -> Path:
    """The Copilot CLI that `npm ci` installed for this machine: npm installs only the platform
    package matching the OS, CPU (and libc) of the machine it runs on, so amd64 and arm64 images
    and hosts each find their own. Falls back to the expected path, for a clear "not found"."""
    system = "linux" if sys.platform.startswith("linux") else sys.platform
    cpu = _NPM_CPU.get(platform.machine().lower(), platform.machine().lower())
    names = [f"copilot-{system}-{cpu}"] + ([f"copilot-linuxmusl-{cpu}"] if system == "linux" else [])
    packages = root / "node_modules" / "@github"
    for name in names:
        if (packages / name / "copilot").exists():
            return packages / name / "copilot"
    return packages / names[0] / "copilot"


MAX_PROMPT_CHARS = 20_000


class TaskExecutor(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class ResolutionBehavior(StrEnum):
    AUTO_RESOLVE = "auto-resolve"
    SUGGEST = "suggest"
    OFF = "off"


class JiraDeployment(StrEnum):
    AUTO = "auto"
    CLOUD = "cloud"
    DATACENTER = "datacenter"


class PlanApproval(StrEnum):
    OFF = "off"
    REQUIRED = "required"
    AUTO_FOR_LABELS = "auto-for-labels"


Severity = Literal["critical", "major", "minor", "info"]


class ReviewPublish(StrEnum):
    AUTO = "auto"
    DRAFTS = "drafts"
    DIRECT = "direct"


class AccessLevel(StrEnum):
    """GitLab access levels by name; the members API reports them as numbers."""

    GUEST = "guest"
    REPORTER = "reporter"
    DEVELOPER = "developer"
    MAINTAINER = "maintainer"
    OWNER = "owner"

    @property
    def number(self) -> int:
        return {"guest": 10, "reporter": 20, "developer": 30, "maintainer": 40, "owner": 50}[self.value]


class AnswerAccess(StrEnum):
    """Who gets an answer at all: a project role, or "anyone" (non-members of public projects too)."""

    ANYONE = "anyone"
    GUEST = "guest"
    REPORTER = "reporter"
    DEVELOPER = "developer"
    MAINTAINER = "maintainer"
    OWNER = "owner"

    @property
    def number(self) -> int:
        return 0 if self is AnswerAccess.ANYONE else AccessLevel(self.value).number


# One entry of JIRA_PROJECT_MAP (contracts/project_map.py has every accepted form of the map).
JiraProjectMapping = Binding

# GITLAB_TOKEN__<ALIAS>: extra GitLab credentials, read from the environment and `.env` (alias
# lower-cased, as the seed did). GITLAB_TOKEN is the alias "default".
CREDENTIAL_PREFIX = "GITLAB_TOKEN__"


def raw_environment(env_file: str | Path | None = ".env") -> dict[str, str]:
    """The variables the settings are read from: `.env` overlaid by the process environment,
    empty values dropped (they mean "the default")."""
    from_file = dotenv_values(env_file) if env_file and Path(env_file).is_file() else {}
    return {k: v for k, v in [*from_file.items(), *os.environ.items()] if v}


class _CredentialTokens(PydanticBaseSettingsSource):
    """Collects every GITLAB_TOKEN__<ALIAS> into the `gitlab_tokens` field, from the same `.env`
    file the other settings come from (`_env_file=` included) and the environment."""

    def __init__(self, settings_cls: type[BaseSettings], dotenv: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self.env_file = getattr(dotenv, "env_file", None)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env_file = self.env_file if isinstance(self.env_file, str | Path) else None
        tokens = {
            name[len(CREDENTIAL_PREFIX) :].lower(): value
            for name, value in raw_environment(env_file).items()
            if name.upper().startswith(CREDENTIAL_PREFIX) and len(name) > len(CREDENTIAL_PREFIX)
        }
        return {"gitlab_tokens": tokens} if tokens else {}


def env_name(field_name: str) -> str:
    """The variable a settings field is read from, as the docs name it."""
    extra = Settings.model_fields[field_name].json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("env_name"), str):
        return str(extra["env_name"])
    return field_name.upper()


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    # env_ignore_empty: `NAME=` (as `.env.example` has them) means "the default", in the process
    # environment and in `.env` alike, so a copied `.env.example` overrides nothing and `GITLAB_TOKEN=`
    # counts as unset. Compose passes those empty lines into the container, where they would
    # otherwise replace the image's defaults.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # --- GitLab -----------------------------------------------------------------------------
    gitlab_url: str = Field("https://gitlab.com", description="Base URL of the GitLab instance")
    gitlab_token: SecretStr | None = Field(None, description="GitLab token of the agent's user (api scope)")
    # --- Seed configuration: credentials, project map, author, review once (seedconfig) ----------
    gitlab_tokens: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra GitLab credentials, one variable per alias (GITLAB_TOKEN__TEAM_B is 'team_b'), "
        "each its own GitLab user; a project uses its project-map entry's credential_ref, else the first "
        "matching projects: rule, else 'default' (GITLAB_TOKEN)",
        json_schema_extra={"env_name": "GITLAB_TOKEN__<ALIAS>"},
    )
    gitlab_review_on_push: bool = Field(
        True, description="Review every push to an MR (false: review each MR once)"
    )
    agent_author_name: str = Field("Copilot Agent", description="Git author name of the agent's commits")
    agent_author_email: str = Field(
        "copilot-agent@noreply.gitlab.com",
        description="Git author e-mail of the agent's commits (GitLab push rules may require a known one)",
    )
    gitlab_webhook_secret: SecretStr | None = Field(
        None, description="Secret token GitLab sends in X-Gitlab-Token; webhooks are refused without it"
    )
    gitlab_projects: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated project paths or IDs to serve (empty: all); resolved at worker start, "
        "so each matches by path and ID, and an entry GitLab does not know is warned about",
    )
    gitlab_poll: bool = Field(False, description="Poll GitLab for MRs with a Temporal Schedule")
    gitlab_poll_interval: int = Field(60, ge=10, description="Seconds between GitLab polls")
    gitlab_agent_username: str | None = Field(
        None, description="Username of the agent's GitLab user (looked up with the token when unset)"
    )
    gitlab_ssl_verify: bool = Field(True, description="Verify GitLab's TLS certificate")
    marker_key: SecretStr | None = Field(
        None,
        description="Comma-separated keys signing the hidden markers in the agent's notes; the first "
        "signs (default: derived from GITLAB_TOKEN; set it before rotating the token)",
    )

    # --- Copilot / model provider -------------------------------------------------------------
    github_token: SecretStr | None = Field(None, description="GitHub token with a Copilot subscription")
    copilot_model: str = Field("gpt-4.1", description="Model name given to the Copilot CLI")
    copilot_provider_type: str = Field("", description='BYOK provider: "openai", "azure", "anthropic" or ""')
    copilot_provider_base_url: str = Field("", description="BYOK provider base URL (e.g. http://host/v1)")
    copilot_provider_api_key: SecretStr | None = Field(None, description="BYOK provider API key")
    copilot_cli_path: str = Field(
        "",
        description="Path of the copilot executable (default: the pinned one under node_modules for this OS and CPU)",
    )
    copilot_cache_dir: str = Field(
        "",
        description="XDG cache dir where the Copilot CLI unpacks itself (default: $XDG_CACHE_HOME, else .data/copilot-cache)",
    )
    copilot_timeout: int = Field(600, ge=10, description="Seconds one agent run may take")

    # --- Agent prompts and follow-ups (seed parity: SYSTEM_PROMPT & co., core/prompts.py) --------
    # The persona at the top of each prompt. The output contract and the security rules are not
    # configurable: the rules always come after every configured text.
    system_prompt: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Text put before every persona (all agent runs)"
    )
    system_prompt_suffix: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Text added after SYSTEM_PROMPT (all agent runs)"
    )
    review_system_prompt: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Replaces the review persona (empty: the built-in one)"
    )
    review_system_prompt_suffix: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Added after the review persona"
    )
    coding_system_prompt: str = Field(
        "",
        max_length=MAX_PROMPT_CHARS,
        description="Replaces the implementation (Jira) persona (empty: the built-in one)",
    )
    coding_system_prompt_suffix: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Added after the implementation persona"
    )
    discussion_system_prompt: str = Field(
        "",
        max_length=MAX_PROMPT_CHARS,
        description="Replaces the MR discussion persona (empty: the built-in one)",
    )
    discussion_system_prompt_suffix: str = Field(
        "", max_length=MAX_PROMPT_CHARS, description="Added after the MR discussion persona"
    )
    review_custom_agent: str = Field(
        "",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$",
        description="Custom agent (by name, from the target branch's .github/agents or .claude/agents) "
        "reviews run as; empty: none",
    )
    coding_custom_agent: str = Field(
        "", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$", description="Custom agent implementations run as"
    )
    discussion_custom_agent: str = Field(
        "", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$", description="Custom agent MR discussions run as"
    )
    copilot_plugin_dirs: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated absolute paths of pre-installed Copilot CLI plugin directories given "
        "to every agent run (plugins are never fetched from a marketplace at run time)",
    )
    # --- per-project plugins (parity: issue 15) ------------------------------------------------
    copilot_plugin_root: str = Field(
        "",
        description="Absolute path of the directory holding the pre-installed plugins the project map's "
        "`plugins` entries name (`<root>/<entry>`); empty: a map that names plugins is refused",
    )
    copilot_follow_ups: int = Field(
        2,
        ge=0,
        le=5,
        description="Follow-up messages, in the same Copilot session, to a run that ended without its "
        "report, before it counts as failed",
    )

    # --- Jira ----------------------------------------------------------------------------------
    jira_url: str = Field("", description="Base URL of Jira (empty: Jira integration off)")
    jira_email: str = Field("", description="Jira user e-mail (Basic auth); empty for bearer (PAT) auth")
    jira_api_token: SecretStr | None = Field(None, description="Jira API token or PAT")
    jira_project_map: Annotated[ProjectMap, NoDecode] = Field(
        default_factory=ProjectMap,
        description="Project map, JSON or YAML: Jira key -> {repo, target_branch, credential_ref, plugins, "
        'resolution_behavior, ...}; the seed\'s {"mappings": ...} and mappings.yaml forms too',
    )
    jira_project_map_file: str = Field(
        "",
        description="File holding the project map (any form of JIRA_PROJECT_MAP); read again when it "
        "changes, so edits apply without a restart. Replaces JIRA_PROJECT_MAP",
    )
    jira_trigger_status: str = Field("AI Ready", description="Status that hands an issue to the agent")
    jira_in_progress_status: str = Field("In Progress", description="Status while the agent works")
    jira_in_review_status: str = Field("In Review", description="Status once the draft MR is open")
    jira_failed_status: str = Field(
        "", description="Status on failure (empty: back to the trigger status, labelled as failed)"
    )
    jira_poll_interval: int = Field(30, ge=5, description="Seconds between Jira polls")

    # --- ImplementIssue: Jira flavour, plan approval, review loop (area: implement) -------------
    jira_deployment: JiraDeployment = Field(
        JiraDeployment.AUTO,
        description='"auto" (from serverInfo deploymentType), "cloud" (REST v3, ADF) or "datacenter" (Server/DC: REST v2, wiki markup)',
    )
    plan_approval: PlanApproval = Field(
        PlanApproval.REQUIRED,
        description='"required" (a plan is approved in Jira before any code), "off", or "auto-for-labels" (issues with a PLAN_AUTO_LABELS label skip approval)',
    )
    plan_auto_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated labels whose issues need no plan approval (auto-for-labels)",
    )
    plan_approvers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["role:Administrators"],
        description='Comma-separated "role:<project role>" / "group:<Jira group>" whose "approve" / "changes: ..." comments count',
    )
    plan_approve_label: str = Field("", description="Label that approves the plan (empty: no label approval)")
    plan_approve_status: str = Field(
        "", description="Status the issue is moved to that approves the plan (empty: no transition approval)"
    )
    plan_poll_interval: int = Field(
        300, ge=1, description="Seconds between the waiting workflow's reads of the issue's comments"
    )
    plan_reminder_after: int = Field(
        86400, ge=0, description="Seconds without a decision before one reminder comment (0: none)"
    )
    plan_expire_after: int = Field(
        604800, ge=1, description="Seconds without a decision before the issue goes back, with a comment"
    )
    plan_max_rounds: int = Field(
        3, ge=1, description="Plans one issue may get (changes requested → revised plan)"
    )
    plan_polls_per_run: int = Field(
        500,
        ge=1,
        description="Decision checks before the waiting workflow continues as new (bounded history)",
    )
    implement_review_rounds: int = Field(
        2, ge=0, description="Review → fix rounds on the agent's own MR (0: no review loop)"
    )
    implement_blocking_severity: Severity = Field(
        "minor",
        description="Lowest finding severity that keeps an agent-authored MR a draft (stricter than for people)",
    )
    implement_mark_ready: bool = Field(
        False,
        description="Mark the agent's MR ready once its latest review has no open blocking finding and tests pass (never merged)",
    )

    # --- Review behaviour -----------------------------------------------------------------------
    review_drafts: bool = Field(False, description="Review draft MRs too")
    review_forks: bool = Field(
        True, description="Review MRs from forks (anyone can open one on a public project)"
    )
    review_max_diff_lines: int = Field(3000, ge=50, description="Diff lines sent to the agent per review")
    review_exclude: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "*.lock",
            "package-lock.json",
            "yarn.lock",
            "pnpm-lock.yaml",
            "poetry.lock",
            "uv.lock",
            "go.sum",
            "Cargo.lock",
            "vendor/**",
            "node_modules/**",
            "*.min.js",
            "*.min.css",
            "*.pb.go",
            "*_pb2.py",
            "dist/**",
        ],
        description="Comma-separated globs of files never reviewed (lockfiles, generated, vendored)",
    )
    # --- Large reviews in bundles (ReviewMR fans out into ReviewBundle child workflows) -----------
    review_bundle_max_tokens: int = Field(
        40_000,
        ge=1000,
        description="Estimated diff tokens one agent run of a review takes; a larger diff (or one over "
        "REVIEW_MAX_DIFF_LINES) is reviewed in bundles of related files, each its own agent run",
    )
    review_max_bundles: int = Field(
        20,
        ge=0,
        description="Bundles (agent runs) one review may use; files beyond are listed as not reviewed (0: no cap)",
    )
    review_max_tokens_per_mr: int = Field(
        2_000_000,
        ge=0,
        description="Estimated model tokens one review's bundles may use together; files beyond are listed "
        "as not reviewed (0: no cap)",
    )
    resolution_behavior: ResolutionBehavior = Field(
        ResolutionBehavior.SUGGEST,
        description="What to do with the agent's own fixed threads: suggest (reply, leave open), "
        "auto-resolve or off; per project in the project map",
    )
    # --- review delivery (delivery): one batch per review, a truthful commit status ---
    review_publish: ReviewPublish = Field(
        ReviewPublish.AUTO,
        description='How a review reaches the MR: "drafts" (GitLab draft notes published as one batch: one '
        'notification per review), "direct" (one thread per finding, for GitLab without draft notes), '
        '"auto" (drafts where the instance has the draft notes API)',
    )
    review_commit_status: bool = Field(
        True,
        description="Set the copilot-review commit status on the reviewed head (running, then the outcome)",
    )
    review_status_fail_on_critical: bool = Field(
        False, description="A review with critical findings ends its copilot-review commit status failed"
    )
    discussion_push: bool = Field(True, description="Allow pushing requested changes from MR notes")
    discussion_push_min_access: AccessLevel = Field(
        AccessLevel.DEVELOPER, description="Lowest project role whose notes may make the agent push"
    )
    auto_merge_enabled: bool = Field(False, description="Open implementation MRs as ready, not Draft")
    dismiss_min_access: AccessLevel = Field(
        AccessLevel.DEVELOPER,
        description='Lowest project role whose "won\'t fix" reply dismisses a finding (the MR author always can)',
    )

    # --- The finding ledger (ledger helper: core/ledger.py, core/ledger_gate.py) ----------------
    review_critical_anywhere: bool = Field(
        True,
        description="Later reviews post critical findings on lines the new commits did not touch too "
        "(other findings only on touched lines)",
    )

    # --- Spend and fairness (enforced before an agent slot is taken) -----------------------------
    discussion_min_access: AnswerAccess = Field(
        AnswerAccess.REPORTER,
        description='Lowest project role whose notes get any answer ("anyone": non-members too)',
    )
    discussion_rate_per_user: int = Field(
        10, ge=0, description="Agent answers one user gets per hour in one project (0: no limit)"
    )
    discussion_rate_per_mr: int = Field(20, ge=0, description="Agent answers per MR per hour (0: no limit)")
    agent_runs_per_project_per_day: int = Field(
        200, ge=0, description="Agent runs (reviews, answers) one project gets per UTC day (0: no limit)"
    )
    agent_tokens_per_project_per_day: int = Field(
        20_000_000,
        ge=0,
        description="Model tokens (prompt + completion) one project's agent runs may use per UTC day "
        "(0: no limit); checked before a slot is granted, so runs already going may overshoot it",
    )
    fork_reviews_per_author_per_day: int = Field(
        10, ge=0, description="Reviews of fork MRs one author gets per project per UTC day (0: no limit)"
    )
    max_queued_agent_runs_per_project: int = Field(
        50, ge=1, description="Agent runs one project may have waiting for a slot (more are refused)"
    )

    # --- Agent execution ------------------------------------------------------------------------
    task_executor: TaskExecutor = Field(TaskExecutor.LOCAL, description='"local" or "kubernetes"')
    work_dir: str = Field(
        "",
        description="Where clones and run directories live (default: .data/work); the worker removes the "
        "stale run directories a killed run left there at start",
    )
    k8s_namespace: str = Field("", description="Namespace for agent Jobs (default: the worker's own)")
    k8s_job_image: str = Field("", description="Image of agent Jobs (default: the worker image)")
    k8s_job_timeout: int = Field(900, ge=30, description="activeDeadlineSeconds of an agent Job")
    k8s_job_ttl: int = Field(600, ge=0, description="ttlSecondsAfterFinished of an agent Job")
    k8s_job_cpu_limit: str = Field("1", description="CPU limit of an agent Job")
    k8s_job_memory_limit: str = Field("1Gi", description="Memory limit of an agent Job")
    k8s_job_cpu_request: str = Field("250m", description="CPU request of an agent Job")
    k8s_job_memory_request: str = Field("512Mi", description="Memory request of an agent Job")
    k8s_proxy_url: str = Field(
        "",
        description="URL at which agent Jobs reach the worker's Job proxy (model and clone; no key in Jobs)",
    )
    k8s_proxy_listen: str = Field(
        "0.0.0.0:8081", description="host:port the worker's Job proxy listens on (TASK_EXECUTOR=kubernetes)"
    )
    k8s_job_key: SecretStr | None = Field(
        None,
        description="Key of agent-Job leases and result signatures, shared by all workers (default: derived from GITLAB_TOKEN)",
    )
    k8s_job_work_size_limit: str = Field("4Gi", description="sizeLimit of an agent Job's clone volume")
    k8s_job_tmp_size_limit: str = Field("1Gi", description="sizeLimit of an agent Job's /tmp volume")
    k8s_api_url: str = Field("", description="Kubernetes API URL (default: in-cluster config)")
    k8s_job_python: str = Field("python", description="Python executable in agent Job containers")
    k8s_job_workdir: str = Field(
        "/app",
        description="Working directory of agent Job containers (where the code is; the image's WORKDIR)",
    )
    k8s_job_poll_interval: float = Field(
        2.0, gt=0, description="Seconds between checks of a running agent Job"
    )
    k8s_job_pending_timeout: int = Field(
        300, ge=1, description="Seconds an agent Job's pod may stay unschedulable or unable to start"
    )
    sandbox_memory_mb: int = Field(
        2048, ge=256, description="Memory limit of one agent sandbox, MiB (local executor; needs a cgroup)"
    )
    sandbox_max_processes: int = Field(
        256, ge=16, description="Processes one agent sandbox may run at once (local executor)"
    )
    sandbox_tmp_mb: int = Field(256, ge=16, description="Size of an agent sandbox's /tmp tmpfs, MiB")
    sandbox_uid_base: int = Field(
        200000,
        ge=1000,
        description="First uid of agent sandboxes when the worker runs as root (one per sandbox)",
    )
    model_proxy_max_requests: int = Field(
        400, ge=1, description="Model requests one agent run may make through the model proxy"
    )
    model_proxy_max_tokens: int = Field(
        4_000_000, ge=1000, description="Tokens (as the provider reports them) one agent run may spend"
    )
    model_proxy_max_mb: int = Field(
        256, ge=1, description="MiB one agent run may send to and receive from the model provider"
    )
    model_proxy_connect_timeout: float = Field(
        10.0, gt=0, description="Seconds the model proxy waits to connect to the provider"
    )
    model_proxy_idle_timeout: float = Field(
        120.0, gt=0, description="Seconds the model proxy waits for the provider's next bytes"
    )
    max_concurrent_agent_runs: int = Field(4, ge=1, description="Agent runs one worker executes at once")
    max_agent_runs_per_project: int = Field(
        2, ge=1, description="Agent runs of one GitLab project at once, across all workers (queued beyond)"
    )
    agent_runs_per_second: float = Field(
        0.0,
        ge=0,
        description="Cluster-wide start rate limit of agent runs (0: unlimited; protects the model's rate limit)",
    )

    # --- Temporal --------------------------------------------------------------------------------
    temporal_address: str = Field("localhost:7233", description="host:port of the Temporal frontend")
    temporal_namespace: str = Field("default", description="Temporal namespace")
    temporal_task_queue: str = Field("gitlab-copilot-agent", description="Task queue of the worker")
    temporal_tls: bool = Field(False, description="Use TLS to reach Temporal")
    temporal_tls_cert: str = Field("", description="Client certificate file (mTLS)")
    temporal_tls_key: str = Field("", description="Client key file (mTLS)")
    temporal_tls_ca: str = Field("", description="CA certificate file of the server")
    temporal_api_key: SecretStr | None = Field(None, description="API key (Temporal Cloud)")
    payload_encryption_keys: SecretStr | None = Field(
        None,
        description="Encrypt workflow payloads at rest: comma-separated KEY_ID:BASE64_32_BYTE_KEY (empty: off)",
    )
    payload_encryption_key_id: str = Field(
        "", description="Key ID that encrypts new payloads (default: the first of PAYLOAD_ENCRYPTION_KEYS)"
    )
    codec_server_token: SecretStr | None = Field(
        None, description="Bearer token the Temporal Web UI sends to /codec (codec server off when unset)"
    )
    codec_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated Web UI origins allowed to call /codec"
    )

    # --- Service -----------------------------------------------------------------------------
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_level_libraries: str = Field(
        "WARNING",
        description="Level of the HTTP, gRPC and Kubernetes client libraries' own loggers (urllib3, "
        "httpx, kubernetes, ...) when LOG_LEVEL is lower: their DEBUG lines are noise",
    )
    environment: str = Field("", description="deployment.environment of traces and metrics")
    # --- Telemetry (evalhelm: issue 15 item 10) ------------------------------------------------
    otel_exporter_otlp_endpoint: str = Field(
        "",
        description="OTLP collector: http(s)://host:4318 (HTTP) or http(s)://host:4317 (gRPC) (empty: no export)",
    )
    otel_exporter_otlp_protocol: Literal["", "grpc", "http/protobuf"] = Field(
        "",
        description="OTLP protocol: grpc or http/protobuf (empty: grpc for an endpoint on port 4317, else http/protobuf)",
    )
    otel_service_name: str = Field(
        "", description="service.name of traces and metrics (empty: gitlab-copilot-agent-api / -worker)"
    )
    metrics_port: int = Field(0, ge=0, description="Port of the Prometheus scrape endpoint (0: off)")
    enable_docs: bool = Field(False, description="Serve /docs and /openapi.json")
    max_webhook_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest webhook body accepted (413 above)"
    )

    # --- Webhook ingress (intake: api/ingress.py) ---------------------------------------------
    webhook_ip_allowlist: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs allowed to POST /webhook (empty: any address); behind "
        "TRUSTED_PROXIES the client is the rightmost untrusted X-Forwarded-For address",
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated CIDRs of the reverse proxies whose X-Forwarded-For is believed "
        "(empty: none, the TCP peer is the client)",
    )

    @field_validator("webhook_ip_allowlist", "trusted_proxies", mode="before")
    @classmethod
    def _cidrs(cls, value: Any) -> Any:
        value = _split_csv(value)
        if not isinstance(value, list):
            return value
        cidrs = []
        for item in value:
            try:
                cidrs.append(str(ipaddress.ip_network(str(item).strip(), strict=False)))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {str(item)[:60]!r}") from None
        return cidrs

    # ---------------------------------------------------------------------------------------------
    @field_validator(
        "gitlab_projects",
        "review_exclude",
        "codec_cors_origins",
        "copilot_plugin_dirs",
        "plan_auto_labels",
        "plan_approvers",
        mode="before",
    )
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("plan_approvers")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        for item in value:
            kind, _, name = item.partition(":")
            if kind.strip().lower() not in ("role", "group") or not name.strip():
                raise ValueError(f'"{item}" must be "role:<project role>" or "group:<Jira group>"')
        return value

    @field_validator("jira_project_map", mode="before")
    @classmethod
    def _project_map(cls, value: Any) -> Any:
        return parse_project_map(value)

    @field_validator("gitlab_tokens", mode="before")
    @classmethod
    def _aliases(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).strip().lower(): v for k, v in value.items()}
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _CredentialTokens(settings_cls, dotenv_settings),
            file_secret_settings,
        )

    @field_validator("gitlab_url", "jira_url", "copilot_provider_base_url", "k8s_proxy_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level", "log_level_libraries")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.gitlab_poll and not self.gitlab_projects:
            raise ValueError("GITLAB_POLL=true needs GITLAB_PROJECTS (the projects to poll)")
        if self.jira_project_map_file:
            self._map_cache = _MapFile.load(self.jira_project_map_file)  # a bad file stops the start
        if self.jira_url and not self.project_map():
            raise ValueError("JIRA_URL is set but JIRA_PROJECT_MAP (or JIRA_PROJECT_MAP_FILE) is empty")
        _check_plugin_root(self.copilot_plugin_root, self.project_map())
        # "default" without GITLAB_TOKEN is reported where a GitLab call needs it
        unknown = self.project_map().credential_refs() - set(self.credential_aliases()) - {DEFAULT_CREDENTIAL}
        if unknown:
            raise ValueError(
                f"the project map names unknown credential(s) {sorted(unknown)}; configured: "
                f"{self.credential_aliases()} (GITLAB_TOKEN is 'default', GITLAB_TOKEN__<ALIAS> adds one)"
            )
        return self

    # --- derived values ---------------------------------------------------------------------------
    _map_cache: _MapFile | None = PrivateAttr(default=None)
    _runtime: dict[str, Any] = PrivateAttr(default_factory=dict)  # per-process caches (credentials)

    def project_map(self) -> ProjectMap:
        """The current project map: JIRA_PROJECT_MAP_FILE as it is now (read again when it changed;
        a broken edit keeps the last good map and is logged), else JIRA_PROJECT_MAP."""
        if not self.jira_project_map_file:
            return self.jira_project_map
        if self._map_cache is None:
            self._map_cache = _MapFile.load(self.jira_project_map_file)
        self._map_cache = self._map_cache.refreshed(
            set(self.credential_aliases()) | {DEFAULT_CREDENTIAL}, self.copilot_plugin_root
        )
        return self._map_cache.map

    def project_settings(self, path: str, project_id: int | None = None) -> ProjectSettings:
        return self.project_map().for_project(path, project_id)

    def plugins_for(self, path: str, project_id: int | None = None) -> list[str]:
        """The project's plugins from the project map (names under COPILOT_PLUGIN_ROOT)."""
        return list(self.project_settings(path, project_id).plugins)

    def run_options_for(self, path: str, project_id: int | None = None) -> dict[str, Any]:
        """What a project's agent task carries from the project map: its plugins and its model."""
        own = self.project_settings(path, project_id)
        return {"plugins": list(own.plugins), "model": own.model}

    def resolution_for(self, path: str, project_id: int | None = None) -> ResolutionBehavior:
        """RESOLUTION_BEHAVIOR, or the project's own value from the project map."""
        own = self.project_settings(path, project_id).resolution_behavior
        return ResolutionBehavior(own) if own else self.resolution_behavior

    def credential_aliases(self) -> list[str]:
        """Configured GitLab credentials: 'default' (GITLAB_TOKEN) first, then the aliases sorted."""
        aliases = [DEFAULT_CREDENTIAL] if self.gitlab_token is not None else []
        return aliases + sorted(a for a in self.gitlab_tokens if a != DEFAULT_CREDENTIAL)

    def gitlab_token_of(self, alias: str) -> SecretStr | None:
        if alias == DEFAULT_CREDENTIAL:
            return self.gitlab_token or self.gitlab_tokens.get(DEFAULT_CREDENTIAL)
        return self.gitlab_tokens.get(alias)

    def serves_project(self, project_id: int, path: str) -> bool:
        """Whether GITLAB_PROJECTS (IDs or paths, case-insensitive; empty: all) includes the project:
        by the entry's own form, or by the ID an entry resolved to at worker start (either form)."""
        if not self.gitlab_projects:
            return True
        allowed = {p.lower() for p in self.gitlab_projects}
        resolved = self._runtime.get(RESOLVED_PROJECTS, {})
        return str(project_id) in allowed or path.lower() in allowed or int(project_id) in resolved

    def serves_project_ref(self, ref: str | int) -> bool:
        """The same for a project known by one form only (an ID, or a path): its own form, or the other
        form of a resolved entry. An effect still checks GitLab's ID and path (`serves_project`)."""
        if not self.gitlab_projects:
            return True
        ref = str(ref).strip().strip("/").lower()
        allowed = {p.lower() for p in self.gitlab_projects}
        resolved = self._runtime.get(RESOLVED_PROJECTS, {})
        if ref.isdigit():
            return ref in allowed or int(ref) in resolved
        return ref in allowed or ref in {p.lower() for p in resolved.values()}

    @property
    def jira_enabled(self) -> bool:
        return bool(self.jira_url and self.jira_api_token and self.jira_project_map)

    @property
    def data_dir(self) -> Path:
        return REPO_ROOT / ".data"

    @property
    def work_path(self) -> Path:
        return Path(self.work_dir) if self.work_dir else self.data_dir / "work"

    @property
    def copilot_cache_path(self) -> Path:
        if self.copilot_cache_dir:
            return Path(self.copilot_cache_dir)
        # The CLI's own default is $XDG_CACHE_HOME; the image sets it to its pre-warmed cache.
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        return Path(xdg) if xdg else self.data_dir / "copilot-cache"

    @property
    def copilot_executable(self) -> str:
        if self.copilot_cli_path:
            return self.copilot_cli_path
        return str(bundled_copilot())

    def secret_values(self) -> list[str]:
        """Every configured secret, for redaction and canary checks."""
        secrets = [
            self.gitlab_token,
            self.gitlab_webhook_secret,
            self.marker_key,
            self.github_token,
            self.copilot_provider_api_key,
            self.jira_api_token,
            self.temporal_api_key,
            self.payload_encryption_keys,
            self.codec_server_token,
            self.k8s_job_key,
            *self.gitlab_tokens.values(),
        ]
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


# {project ID: path} of the GITLAB_PROJECTS entries resolved at worker start
# (activities/project_allowlist.py), in Settings._runtime.
RESOLVED_PROJECTS = "gitlab_projects_resolved"


def _check_plugin_root(root: str, project_map: ProjectMap) -> None:
    """A map naming plugins needs COPILOT_PLUGIN_ROOT, an absolute path (the executor resolves each
    name in it at run time, executors/plugins.py)."""
    named = project_map.plugin_refs()
    if root and not os.path.isabs(root):
        raise ValueError(f"COPILOT_PLUGIN_ROOT {root!r} must be an absolute path")
    if named and not root:
        raise ValueError(
            f"the project map names plugins {sorted(named)[:10]} but COPILOT_PLUGIN_ROOT is not set "
            "(the directory holding them, pre-installed in the image)"
        )


class _MapFile:
    """JIRA_PROJECT_MAP_FILE, parsed, with what it was parsed from (mtime and size)."""

    def __init__(self, path: str, stamp: tuple[int, int], parsed: ProjectMap) -> None:
        self.path, self.stamp, self.map = path, stamp, parsed

    @staticmethod
    def _stamp(path: str) -> tuple[int, int]:
        info = os.stat(path)
        return info.st_mtime_ns, info.st_size

    @classmethod
    def load(cls, path: str) -> _MapFile:
        try:
            stamp = cls._stamp(path)
            return cls(path, stamp, parse_project_map(Path(path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise ValueError(f"JIRA_PROJECT_MAP_FILE {path}: {exc.strerror or exc}") from None

    def refreshed(self, aliases: set[str], plugin_root: str = "") -> _MapFile:
        try:
            stamp = self._stamp(self.path)
        except OSError:
            stamp = (0, 0)  # gone for now (a ConfigMap update swaps a symlink): keep the last good map
        if stamp == self.stamp:
            return self
        try:
            fresh = _MapFile.load(self.path)
            unknown = fresh.map.credential_refs() - aliases
            if unknown:
                raise ValueError(f"unknown credential(s) {sorted(unknown)}")
            _check_plugin_root(plugin_root, fresh.map)
        except ValueError as exc:
            logging.getLogger(__name__).error(
                "JIRA_PROJECT_MAP_FILE %s changed but is not usable, keeping the last good map: %s",
                self.path,
                str(exc)[:500],
            )
            return _MapFile(self.path, stamp, self.map)  # said once per change, not on every read
        logging.getLogger(__name__).info("project map reloaded from %s", self.path)
        return fresh


def describe_errors(exc: ValidationError) -> str:
    """A readable table of what is wrong with the configuration: variable, problem, meaning."""
    rows = [("VARIABLE", "PROBLEM", "MEANING")]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = Settings.model_fields.get(field)
        variable = env_name(field) if field in Settings.model_fields else (field.upper() or "(configuration)")
        problem = "missing" if error["type"] == "missing" else error["msg"].removeprefix("Value error, ")
        rows.append((variable, problem, (info.description or "") if info else ""))
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in rows]
    return "Invalid configuration (environment or .env):\n" + "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings. An invalid configuration exits with code 1 and a readable table."""
    try:
        return Settings()
    except ValidationError as exc:
        print(describe_errors(exc), file=sys.stderr)
        raise SystemExit(1) from None


__all__ = [
    "AccessLevel",
    "AnswerAccess",
    "JiraDeployment",
    "JiraProjectMapping",
    "PlanApproval",
    "ResolutionBehavior",
    "Settings",
    "TaskExecutor",
    "get_settings",
]
