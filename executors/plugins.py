"""A project's Copilot CLI plugins: names from the project map, directories under COPILOT_PLUGIN_ROOT.

The project map (operator configuration, never the repository or the MR) lists plugin names per
project; the task carries those names (contracts/agent_tasks.py checks their grammar), and this module
turns each into `<COPILOT_PLUGIN_ROOT>/<name>` of the executor's own filesystem: the image's
pre-installed plugins. Nothing is fetched at run time (ADR 18). A name that is not a directory under
the root, or reaches outside it through a symlink, refuses the run with a ValueError naming it (the
activities turn that into a permanent `agent run refused: ...` failure an operator must fix).

The resolved directories reach the CLI as read-only `--plugin-dir` flags (executors/copilot_cli.py);
the local sandbox binds only those directories, so the other plugins of the root do not exist inside
the run, and the run's HOME is rebuilt before every send, so an agent cannot install a plugin of its
own for a follow-up message.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from contracts.project_map import plugin_name


def project_plugin_dirs(root: str, names: Sequence[str]) -> tuple[str, ...]:
    """The directories of the project's plugins, in the map's order, without duplicates."""
    if not names:
        return ()
    if not root or not os.path.isabs(root):
        raise ValueError(
            f"the project's plugins {list(names)[:5]} need COPILOT_PLUGIN_ROOT, an absolute path "
            f"(now {root!r})"
        )
    base = Path(root).resolve()
    if not base.is_dir():
        raise ValueError(f"COPILOT_PLUGIN_ROOT {root} is not a directory")
    found: list[str] = []
    for name in names:
        plugin_name(name)  # grammar again: a task is input, whoever built it
        real = (base / name).resolve()
        if not real.is_relative_to(base) or real == base:
            raise ValueError(f"plugin {name!r} resolves outside COPILOT_PLUGIN_ROOT {root}")
        if not real.is_dir():
            raise ValueError(f"plugin {name!r} is not installed: {base / name} is not a directory")
        if str(real) not in found:
            found.append(str(real))
    return tuple(found)
