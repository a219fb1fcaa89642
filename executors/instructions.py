"""The repository's instruction files, read from a trusted commit of the clone."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from core.repo_instructions import load_instructions, render_instructions
from executors.git_repo import git

INSTRUCTION_PATHS = [".github/copilot-instructions.md", ".github/instructions", "AGENTS.md"]


def instructions_at(repo: Path, sha: str, changed: list[str]) -> str:
    """The repository's instructions as of `sha` (the target branch), not as the MR edits them:
    an MR author must not be able to instruct the reviewer of their own MR."""
    listing = git(repo, "ls-tree", "-r", "-z", "--name-only", sha, "--", *INSTRUCTION_PATHS, check=False)
    paths = [p for p in listing.split("\0") if p]
    if not paths:
        return ""
    with tempfile.TemporaryDirectory(prefix="instructions-") as tmp:
        root = Path(tmp)
        for path in paths[:200]:
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
