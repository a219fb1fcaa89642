"""GITLAB_PROJECTS, resolved at worker start: each entry looked up once in GitLab, with the credential
that serves it (the project map's), as the seed did at start-up.

Why: an entry is a path (`group/app`) or an ID (`42`), and GitLab's events, the project map and the
manual starts name projects in either form. Until it is resolved, an entry only matches its own form
(and a misspelt entry shows up only in a poll result's errors). After resolution:

- every entry that GitLab knows is matched by its ID as well as its path: the resolved IDs are kept
  (`Settings.serves_project`), and IDs never change, so a project renamed later stays served and a
  new project that takes an old path does not become served by its path through the ID entry;
- every entry GitLab does not know, or the credential cannot see, is named in one warning at start
  and in the `gitlab-projects` line of the Diagnose workflow, with the reason.

The lookup is a read, bounded by python-gitlab's timeout; GitLab being unreachable leaves the
allowlist as written (string matching, the state before resolution), never emptier.
"""

from __future__ import annotations

import logging

import gitlab
import requests

from activities.gitlab_api import project_client, project_credential
from contracts.errors import PermanentError
from contracts.models import CheckResult
from contracts.settings import RESOLVED_PROJECTS, Settings

log = logging.getLogger(__name__)


def _problem(settings: Settings, ref: str) -> str | None:
    """Look `ref` up; record its ID and path, or say why it cannot be served."""
    alias = "?"
    try:
        alias = project_credential(settings, ref)
        project = project_client(settings, ref).projects.get(ref)
    except gitlab.GitlabAuthenticationError:
        return f"{ref!r}: credential {alias!r} was refused (401)"
    except gitlab.GitlabGetError as exc:
        if exc.response_code in (403, 404):
            return f"{ref!r}: no such project, or credential {alias!r} cannot see it ({exc.response_code})"
        return f"{ref!r}: could not be checked (HTTP {exc.response_code})"
    except PermanentError as exc:  # no credential configured, or none can see a project ID
        return f"{ref!r}: {str(exc)[:200]}"
    except (requests.RequestException, gitlab.GitlabError, OSError) as exc:
        return f"{ref!r}: could not be checked now ({type(exc).__name__})"
    settings._runtime.setdefault(RESOLVED_PROJECTS, {})[int(project.id)] = str(project.path_with_namespace)
    return None


def resolve_gitlab_projects(settings: Settings) -> list[str]:
    """Resolve every GITLAB_PROJECTS entry once; returns the problems (also logged in one warning)."""
    problems = [p for p in (_problem(settings, ref) for ref in settings.gitlab_projects) if p]
    if problems:
        log.warning(
            "GITLAB_PROJECTS: %d of %d entries cannot be served: %s",
            len(problems),
            len(settings.gitlab_projects),
            "; ".join(problems),
        )
    elif settings.gitlab_projects:
        log.info("GITLAB_PROJECTS: all %d entries resolved", len(settings.gitlab_projects))
    return problems


def allowlist_check(settings: Settings) -> CheckResult:
    """The Diagnose workflow's `gitlab-projects` line."""
    if not settings.gitlab_projects:
        return CheckResult(name="gitlab-projects", ok=True, detail="not set: every project is served")
    problems = resolve_gitlab_projects(settings)
    if problems:
        return CheckResult(name="gitlab-projects", ok=False, detail="; ".join(problems)[:1000])
    return CheckResult(
        name="gitlab-projects", ok=True, detail=f"{len(settings.gitlab_projects)} entries resolved"
    )
