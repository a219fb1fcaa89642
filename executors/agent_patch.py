"""The agent's change as one bounded binary patch, collected after its sandbox is gone, in a new one.

The clone's `.git` is the agent's to edit (core.fsmonitor, hooks paths, attributes, a symlinked
`.git/info`): any git the worker ran there would run the agent's commands as the worker, outside the
sandbox. So the `git add`/`git diff` that read the change run in a fresh sandbox without network,
and the worker only ever sees the patch text. The patch is applied by the worker to a fresh clone
of its own (activities/discussion_push.py, activities/implement.py) or, for the test evidence, in
another sandbox (executors/test_evidence.py).
"""

from __future__ import annotations

from pathlib import Path

from executors.process_sandbox import Sandbox, run_captured

PATCH_TIMEOUT_S = 120


def git_env() -> dict[str, str]:
    """git inside a sandbox: no user or system config, never a prompt, a HOME on the sandbox's tmpfs."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 (the sandbox's own tmpfs)
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "LC_ALL": "C",
    }


_SCRIPT = """
set -e
if [ "$BINARY" = 1 ]; then mkdir -p .git/info && printf '* binary\\n' > .git/info/attributes; fi
git add --all -- . "$@" >/dev/null
exec git diff --cached --binary --no-color --no-ext-diff "$BASE"
"""


async def collect_patch(
    sandbox: Sandbox, repo: Path, base: str, *, max_bytes: int, excludes: tuple[str, ...] = ()
) -> tuple[str | None, bool]:
    """(patch, too_large): every change in the work tree, committed or not, against `base`.

    `git add --all` respects the repository's .gitignore, so build output and caches stay out; the
    `excludes` globs too. When a changed text file is not UTF-8 the patch is made again with every
    file marked binary (in .git/info/attributes, which outranks the tree's .gitattributes).
    """
    pathspecs = [f":(exclude,glob){pattern}" for pattern in excludes]
    for binary in ("0", "1"):
        env = {**git_env(), "BASE": base, "BINARY": binary}
        out = await run_captured(
            sandbox,
            ["sh", "-c", _SCRIPT, "collect-patch", *pathspecs],
            cwd=repo,
            env=env,
            writable=[repo],
            max_output=max_bytes,
            timeout_s=PATCH_TIMEOUT_S,
        )
        if out.truncated:
            return None, True
        if out.exit_code != 0:
            raise RuntimeError(
                f"collecting the agent's patch failed (exit {out.exit_code}): "
                f"{out.stderr.decode('utf-8', 'replace').strip()[-500:]}"
            )
        try:
            patch = out.stdout.decode("utf-8")
        except UnicodeDecodeError:
            continue
        return (patch, False) if patch.strip() else (None, False)
    raise RuntimeError("the agent's patch is not UTF-8 even with every file marked binary")
