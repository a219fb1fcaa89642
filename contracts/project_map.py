"""The project map: which GitLab repository each Jira project changes, and per-project settings.

Accepted in every form a seed installation has (docs/migration-from-seed.md, "Project map"):

* the seed's rendered JSON, `{"mappings": {"PROJ": {"repo": ..., "credential_ref": ..., ...}}}`;
* the seed's YAML `mappings.yaml`, `defaults:` + `bindings:` (each with `jira_project` and `repo`);
* the plain `{"PROJ": {"repo": ...}}` form of earlier versions of this service.

Any form may add `projects:`, a list of rules that give GitLab projects without a Jira binding their
credential and resolution behaviour by path pattern. The seed's `mapping-helper` CLI is this module:

    python -m contracts.project_map validate|show|render-json|schema mappings.yaml
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

DEFAULT_CREDENTIAL = "default"
ResolutionName = Literal["auto-resolve", "suggest", "off"]


def _repo(value: str) -> str:
    value = value.strip().strip("/")
    if not value.isdigit() and "/" not in value:
        raise ValueError(f"repo {value!r} must be a path 'group/project' or a numeric project ID")
    return value


def _alias(value: str) -> str:
    return value.strip().lower()  # GITLAB_TOKEN__<ALIAS> aliases are lower-cased, as in the seed


# A `plugins` entry names a plugin directory pre-installed under COPILOT_PLUGIN_ROOT (`house-rules`,
# `org/house-rules`, `name@marketplace`): one to three plain segments, never a path of its own (no
# leading `/`, no `.`/`..` segment, no `~` or `\`), so an entry can never reach outside that root.
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}(/[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}){0,2}$")
MAX_PLUGINS = 20


def plugin_name(value: str) -> str:
    """The entry itself when it is a plugin name, else ValueError saying what an entry must be."""
    if not isinstance(value, str) or not _PLUGIN_NAME.match(value) or ".." in value.split("/"):
        raise ValueError(
            f"plugin {str(value)[:120]!r} must name a plugin directory under COPILOT_PLUGIN_ROOT: "
            "'name' or 'group/name' (letters, digits, '.', '_', '-', '@', '+'), not a path"
        )
    return value


# A model name as providers spell them (`gpt-4.1`, `claude-sonnet-4`, `openai/gpt-4o`, `o3:high`).
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}$")


def model_name(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _MODEL_NAME.match(value):
        raise ValueError(f"model {str(value)[:120]!r} is not a model name (letters, digits, . _ : / @ + -)")
    return value


def plugin_names(values: list[str]) -> list[str]:
    if len(values) > MAX_PLUGINS:
        raise ValueError(f"at most {MAX_PLUGINS} plugins per project, not {len(values)}")
    return [plugin_name(v) for v in values]


# The checked fields that bindings and path rules share.
RepoRef = Annotated[str, AfterValidator(_repo)]
CredentialRef = Annotated[str, AfterValidator(_alias)]
PluginList = Annotated[list[str], AfterValidator(plugin_names)]
ModelName = Annotated[str | None, AfterValidator(model_name)]


class Binding(BaseModel):
    """A Jira project key mapped to the GitLab repository it changes (one rendered binding)."""

    model_config = ConfigDict(extra="forbid")

    repo: RepoRef = Field(description="GitLab project path (group/name) or numeric ID")
    target_branch: str = "main"
    credential_ref: CredentialRef = Field(
        DEFAULT_CREDENTIAL, description="GITLAB_TOKEN__<ALIAS> alias ('default': GITLAB_TOKEN)"
    )
    plugins: PluginList = Field(
        default_factory=list,
        description="Copilot CLI plugins for this project's runs: names of directories under COPILOT_PLUGIN_ROOT",
    )
    trigger_status: str | None = None
    in_progress_status: str | None = None
    in_review_status: str | None = None
    failed_status: str | None = None
    resolution_behavior: ResolutionName | None = Field(
        None, description="What to do with the agent's own fixed threads (default: RESOLUTION_BEHAVIOR)"
    )
    test_command: str | None = Field(
        default=None, description="Command the service runs after the agent for test evidence"
    )
    model: ModelName = Field(None, description="Model of this project's agent runs (default: COPILOT_MODEL)")


class ProjectRule(BaseModel):
    """Per-project settings for GitLab projects matched by path (`group/*`, `group/**`, exact path)."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(description="Project path or glob pattern (fnmatch; `*` also crosses `/`)")
    credential_ref: CredentialRef = DEFAULT_CREDENTIAL
    plugins: PluginList = Field(default_factory=list)
    resolution_behavior: ResolutionName | None = None
    model: ModelName = None

    def matches(self, path: str, project_id: int | None = None) -> bool:
        pattern = self.repo.strip().strip("/").lower()
        if project_id is not None and pattern == str(project_id):
            return True
        return fnmatch.fnmatchcase(path.lower(), pattern.replace("**", "*"))


class ProjectSettings(BaseModel):
    """What applies to one GitLab project: its credential, plugins, resolution behaviour and model."""

    credential_ref: str = DEFAULT_CREDENTIAL
    plugins: list[str] = Field(default_factory=list)
    resolution_behavior: ResolutionName | None = None
    model: str | None = None


class ProjectMap(BaseModel):
    """The parsed map. Reads like the `{KEY: Binding}` dict it replaces (`get`, `items`, `in`, ...)."""

    model_config = ConfigDict(extra="forbid")

    jira: dict[str, Binding] = Field(default_factory=dict)
    projects: list[ProjectRule] = Field(default_factory=list)

    # --- the mapping interface of the former dict -------------------------------------------------
    def __getitem__(self, key: str) -> Binding:
        return self.jira[key]

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        return iter(self.jira)

    def __len__(self) -> int:
        return len(self.jira)

    def __contains__(self, key: object) -> bool:
        return key in self.jira

    def __bool__(self) -> bool:
        return bool(self.jira)

    def get(self, key: str, default: Binding | None = None) -> Binding | None:
        return self.jira.get(key, default)

    def items(self):  # noqa: ANN201 - dict view
        return self.jira.items()

    def keys(self):  # noqa: ANN201
        return self.jira.keys()

    def values(self):  # noqa: ANN201
        return self.jira.values()

    # --- per project ------------------------------------------------------------------------------
    def for_project(self, path: str, project_id: int | None = None) -> ProjectSettings:
        """The binding whose repo is this project, else the first matching `projects:` rule."""
        wanted = {path.lower().strip("/")} | ({str(project_id)} if project_id is not None else set())
        for binding in self.jira.values():
            if binding.repo.lower() in wanted:
                return ProjectSettings(
                    credential_ref=binding.credential_ref,
                    plugins=binding.plugins,
                    resolution_behavior=binding.resolution_behavior,
                    model=binding.model,
                )
        for rule in self.projects:
            if rule.matches(path, project_id):
                return ProjectSettings(
                    credential_ref=rule.credential_ref,
                    plugins=rule.plugins,
                    resolution_behavior=rule.resolution_behavior,
                    model=rule.model,
                )
        return ProjectSettings()

    def credential_refs(self) -> set[str]:
        return {b.credential_ref for b in self.jira.values()} | {r.credential_ref for r in self.projects}

    def plugin_refs(self) -> set[str]:
        """Every plugin the map names (each must be installed under COPILOT_PLUGIN_ROOT)."""
        named = [*(b.plugins for b in self.jira.values()), *(r.plugins for r in self.projects)]
        return {name for names in named for name in names}

    def render(self) -> dict[str, Any]:
        """The seed's rendered JSON shape (`{"mappings": ...}`), plus `projects` when there are rules."""
        out: dict[str, Any] = {"mappings": {k: b.model_dump(exclude_none=True) for k, b in self.jira.items()}}
        if self.projects:
            out["projects"] = [r.model_dump(exclude_none=True) for r in self.projects]
        return out


# --- the seed's YAML authoring form --------------------------------------------------------------
class MappingDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_branch: str = "main"
    credential_ref: str = DEFAULT_CREDENTIAL
    plugins: list[str] = Field(default_factory=list)
    trigger_status: str | None = None
    in_progress_status: str | None = None
    in_review_status: str | None = None
    failed_status: str | None = None
    resolution_behavior: ResolutionName | None = None
    test_command: str | None = None
    model: str | None = None


class MappingBinding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jira_project: str = Field(min_length=1)
    repo: str = Field(min_length=1)
    target_branch: str | None = None
    credential_ref: str | None = None
    plugins: list[str] | None = None
    trigger_status: str | None = None
    in_progress_status: str | None = None
    in_review_status: str | None = None
    failed_status: str | None = None
    resolution_behavior: ResolutionName | None = None
    test_command: str | None = None
    model: str | None = None


class MappingFile(BaseModel):
    """The seed's `mappings.yaml`: defaults applied to every binding unless it overrides them."""

    model_config = ConfigDict(extra="forbid")

    defaults: MappingDefaults = Field(default_factory=MappingDefaults)
    bindings: list[MappingBinding] = Field(min_length=1)
    projects: list[ProjectRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_keys(self) -> MappingFile:
        seen: dict[str, int] = {}
        duplicates = []
        for index, binding in enumerate(self.bindings):
            if binding.jira_project in seen:
                duplicates.append(
                    f"{binding.jira_project!r} at bindings {seen[binding.jira_project]} and {index}"
                )
            seen.setdefault(binding.jira_project, index)
        if duplicates:
            raise ValueError("duplicate Jira project keys: " + "; ".join(duplicates))
        return self

    def to_map(self) -> ProjectMap:
        defaults = self.defaults.model_dump()
        jira = {}
        for binding in self.bindings:
            given = binding.model_dump(exclude={"jira_project"}, exclude_none=True)
            jira[binding.jira_project] = Binding.model_validate({**defaults, **given})
        return ProjectMap(jira=jira, projects=self.projects)


def _load_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        json_error = f"not valid JSON ({exc.msg} at position {exc.pos})"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"{json_error}, and not valid YAML either{where}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{json_error}, and as YAML not a mapping")
    return data


def parse_project_map(value: Any) -> ProjectMap:
    """Any accepted form (text or already-parsed data) to a ProjectMap. Raises ValueError or
    pydantic's ValidationError (a ValueError too) naming what is wrong."""
    if isinstance(value, ProjectMap):
        return value
    if value is None or (isinstance(value, str) and not value.strip()):
        return ProjectMap()
    data = _load_text(value) if isinstance(value, str) else value
    if not isinstance(data, dict):
        raise ValueError("the project map must be a mapping")
    if "bindings" in data:
        return MappingFile.model_validate(data).to_map()
    projects = data.get("projects", [])
    if "mappings" in data:
        extra = set(data) - {"mappings", "projects"}
        if extra:
            raise ValueError(f"unknown top-level keys {sorted(extra)} (expected 'mappings', 'projects')")
        return ProjectMap(jira=data["mappings"] or {}, projects=projects)
    return ProjectMap(jira={k: v for k, v in data.items() if k != "projects"}, projects=projects)


def read_project_map(path: str | Path) -> ProjectMap:
    return parse_project_map(Path(path).read_text(encoding="utf-8"))


# --- the helper CLI (the seed's mapping-helper) ----------------------------------------------------
def _problems(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return [f"[{' > '.join(str(p) for p in e['loc']) or 'map'}] {e['msg']}" for e in exc.errors()]
    return [str(exc)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m contracts.project_map",
        description="Validate, show or render a project map (the seed's mappings.yaml or JSON).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("validate", "check the file and list the credential aliases it needs"),
        ("show", "a table of Jira key, repository, branch, credential and resolution"),
        ("render-json", "print the rendered JSON (the seed's JIRA_PROJECT_MAP shape)"),
    ):
        sub.add_parser(name, help=text).add_argument("path", type=Path)
    sub.add_parser("schema", help="print the JSON schema of the YAML mapping file")
    args = parser.parse_args(argv)

    if args.command == "schema":
        print(json.dumps(MappingFile.model_json_schema(), indent=2))
        return 0
    try:
        project_map = read_project_map(args.path)
    except (OSError, ValueError) as exc:
        print(f"INVALID: {args.path}", file=sys.stderr)
        for line in _problems(exc):
            print(f"  {line}", file=sys.stderr)
        return 1
    if args.command == "validate":
        print(f"VALID: {args.path}")
        print(f"  {len(project_map)} binding(s), {len(project_map.projects)} project rule(s)")
        print(f"  credential refs required: {', '.join(sorted(project_map.credential_refs())) or 'none'}")
        plugins = ", ".join(sorted(project_map.plugin_refs())) or "none"
        print(f"  plugins required (under COPILOT_PLUGIN_ROOT): {plugins}")
    elif args.command == "show":
        rows = [("JIRA", "REPO", "BRANCH", "CREDENTIAL", "RESOLUTION", "PLUGINS")]
        for key, b in project_map.items():
            rows.append((key, b.repo, b.target_branch, b.credential_ref, b.resolution_behavior or "(global)",
                         ",".join(b.plugins)))  # fmt: skip
        for rule in project_map.projects:
            rows.append(("-", rule.repo, "-", rule.credential_ref, rule.resolution_behavior or "(global)",
                         ",".join(rule.plugins)))  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        for row in rows:
            print("  ".join(f"{cell:<{widths[i]}}" for i, cell in enumerate(row[:5])) + "  " + row[5])
    else:
        print(json.dumps(project_map.render(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
