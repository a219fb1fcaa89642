"""The repository's instruction files, read from a trusted commit of the clone."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from core.repo_instructions import (
    AGENTS,
    CLAUDE,
    CLAUDE_DIR_FILE,
    CLAUDE_SCOPED_DIR,
    COPILOT_INSTRUCTIONS,
    NESTED_SKIP_DIRS,
    SCOPED_DIR,
    load_instructions,
    render_instructions,
)
from executors.git_repo import git

INSTRUCTION_FILES = frozenset({COPILOT_INSTRUCTIONS, CLAUDE_DIR_FILE, CLAUDE, AGENTS})
INSTRUCTION_DIRS = (SCOPED_DIR + "/", CLAUDE_SCOPED_DIR + "/")
MAX_FILES = 200


def _is_instruction(path: str) -> bool:
    if path in INSTRUCTION_FILES or path.startswith(INSTRUCTION_DIRS):
        return True
    *dirs, name = path.split("/")
    return name == AGENTS and not NESTED_SKIP_DIRS.intersection(dirs)


def instructions_at(repo: Path, sha: str, changed: list[str]) -> str:
    """The repository's instructions as of `sha` (the target branch), not as the MR edits them:
    an MR author must not be able to instruct the reviewer of their own MR."""
    # The whole tree's names (nested AGENTS.md may sit anywhere), filtered here; only blobs are read.
    listing = git(repo, "ls-tree", "-r", "-z", "--name-only", sha, check=False)
    paths = [p for p in listing.split("\0") if p and _is_instruction(p)]
    if not paths:
        return ""
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        root = Path(tmp)
        for path in paths[:MAX_FILES]:
            blob = subprocess.run(
                ["git", "-C", str(repo), "show", f"{sha}:{path}"],
                capture_output=True,
                timeout=30,
                check=False,
            )
            if blob.returncode == 0 and len(blob.stdout) <= 256 * 1024:
                target = root / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.stdout)
        return render_instructions(load_instructions(root, changed))
