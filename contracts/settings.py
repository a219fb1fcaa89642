"""The one configuration model of the service, read from the environment and `.env`.

Variable names follow the seed where it had them (GITLAB_URL, JIRA_PROJECT_MAP, ...), so an operator
can carry an existing `.env` over. Secrets are `SecretStr`: they print as `**********`, and
`secret_values()` lists them for the log redaction filter and the canary tests.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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


class TaskExecutor(StrEnum):
    LOCAL = "local"
    KUBERNETES = "kubernetes"


class ResolutionBehavior(StrEnum):
    AUTO_RESOLVE = "auto-resolve"
    SUGGEST = "suggest"
    OFF = "off"


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


class JiraProjectMapping(BaseModel):
    """One entry of JIRA_PROJECT_MAP: a Jira project key mapped to the GitLab repository it changes."""

    repo: str = Field(description="GitLab project path (group/name) or numeric ID")
    target_branch: str = "main"
    trigger_status: str | None = None
    in_progress_status: str | None = None
    in_review_status: str | None = None
    failed_status: str | None = None
    test_command: str | None = Field(
        default=None, description="Command the service runs after the agent for test evidence"
    )


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
    gitlab_webhook_secret: SecretStr | None = Field(
        None, description="Secret token GitLab sends in X-Gitlab-Token; webhooks are refused without it"
    )
    gitlab_projects: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated project paths or IDs to serve (empty: all)"
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

    # --- Jira ----------------------------------------------------------------------------------
    jira_url: str = Field("", description="Base URL of Jira (empty: Jira integration off)")
    jira_email: str = Field("", description="Jira user e-mail (Basic auth); empty for bearer (PAT) auth")
    jira_api_token: SecretStr | None = Field(None, description="Jira API token or PAT")
    jira_project_map: Annotated[dict[str, JiraProjectMapping], NoDecode] = Field(
        default_factory=dict, description="JSON: Jira project key -> {repo, target_branch, ...}"
    )
    jira_trigger_status: str = Field("AI Ready", description="Status that hands an issue to the agent")
    jira_in_progress_status: str = Field("In Progress", description="Status while the agent works")
    jira_in_review_status: str = Field("In Review", description="Status once the draft MR is open")
    jira_failed_status: str = Field(
        "", description="Status on failure (empty: back to the trigger status, labelled as failed)"
    )
    jira_poll_interval: int = Field(30, ge=5, description="Seconds between Jira polls")

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
    resolution_behavior: ResolutionBehavior = Field(
        ResolutionBehavior.AUTO_RESOLVE, description="What to do with the agent's own fixed threads"
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
    work_dir: str = Field("", description="Where clones and run directories live (default: .data/work)")
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
    environment: str = Field("", description="deployment.environment of traces and metrics")
    otel_exporter_otlp_endpoint: str = Field("", description="OTLP/HTTP endpoint (empty: no export)")
    metrics_port: int = Field(0, ge=0, description="Port of the Prometheus scrape endpoint (0: off)")
    enable_docs: bool = Field(False, description="Serve /docs and /openapi.json")
    max_webhook_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest webhook body accepted (413 above)"
    )

    # ---------------------------------------------------------------------------------------------
    @field_validator("gitlab_projects", "review_exclude", "codec_cors_origins", mode="before")
    @classmethod
    def _csv(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("jira_project_map", mode="before")
    @classmethod
    def _project_map(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
        return value

    @field_validator("gitlab_url", "jira_url", "copilot_provider_base_url", "k8s_proxy_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("log_level")
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
        if self.jira_url and not self.jira_project_map:
            raise ValueError("JIRA_URL is set but JIRA_PROJECT_MAP is empty")
        return self

    # --- derived values ---------------------------------------------------------------------------
    def serves_project(self, project_id: int, path: str) -> bool:
        """Whether GITLAB_PROJECTS (IDs or paths, case-insensitive; empty: all) includes the project."""
        if not self.gitlab_projects:
            return True
        allowed = {p.lower() for p in self.gitlab_projects}
        return str(project_id) in allowed or path.lower() in allowed

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
        ]
        return [s.get_secret_value() for s in secrets if s is not None and s.get_secret_value()]


def describe_errors(exc: ValidationError) -> str:
    """A readable table of what is wrong with the configuration: variable, problem, meaning."""
    rows = [("VARIABLE", "PROBLEM", "MEANING")]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        info = Settings.model_fields.get(field)
        variable = field.upper() if field else "(configuration)"
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
    "JiraProjectMapping",
    "ResolutionBehavior",
    "Settings",
    "TaskExecutor",
    "get_settings",
]
