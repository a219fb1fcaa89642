"""Test evidence measured by the service, never taken on the model's word, on a tree the agent
never touched.

The command is the one configured in JIRA_PROJECT_MAP (`test_command`), else one discovered from the
target branch before the agent runs (and named, so the MR says how it was found). After the agent's
sandbox is gone, `measure` applies its patch to a fresh checkout of the target branch that was made
before the agent started and never mounted in its sandbox; the files that define how the tests run
(Makefile, package.json, conftest.py, pytest/tox config, a script the command names, ...) are put
back to the target branch's version if the patch changed them, and the tests run in a new sandbox
with no network at all. The real exit code, the pass/fail counts where the runner prints them, the
duration and a bounded output tail become the `TestEvidence` the MR description shows, with the
command, where it came from and which harness files were reset.

What the agent still controls: the code it wrote, tests included; a test of its own can print
anything. What it cannot change: the command, the harness, the tree, or the run's environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import tempfile
import time
from pathlib import Path

from executors.git_repo import git
from executors.process_sandbox import Sandbox
from executors.tasks import TestEvidence

TEST_TIMEOUT_S = 900
OUTPUT_TAIL_CHARS = 3000
MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # what is kept in memory while the tests run
_NPM_PLACEHOLDER = "no test specified"
_PYTEST_CONFIG = ("pytest.ini", "conftest.py", "tox.ini")
# Files that decide how a test command runs: the target branch's versions are used, whatever the patch.
HARNESS_NAMES = frozenset(
    {
        "Makefile",
        "makefile",
        "GNUmakefile",
        "package.json",
        "pytest.ini",
        "conftest.py",
        "tox.ini",
        "setup.cfg",
        "pyproject.toml",
        "noxfile.py",
        "sitecustomize.py",
        "usercustomize.py",
        "go.mod",
        "Cargo.toml",
        "jest.config.js",
        "jest.config.ts",
        "vitest.config.js",
        "vitest.config.ts",
        ".mocharc.json",
        ".mocharc.js",
    }
)


# --- discovery ----------------------------------------------------------------------------------------
def _makefile_has_test(repo: Path) -> bool:
    for name in ("Makefile", "makefile", "GNUmakefile"):
        path = repo / name
        if path.is_file():
            text = path.read_text(errors="replace")[:200_000]
            if re.search(r"^test\s*:(?!=)", text, re.MULTILINE):
                return True
    return False


def _package_json_test(repo: Path) -> bool:
    path = repo / "package.json"
    if not path.is_file():
        return False
    try:
        scripts = json.loads(path.read_text(errors="replace")[:1_000_000]).get("scripts") or {}
    except (ValueError, AttributeError):
        return False
    script = scripts.get("test") if isinstance(scripts, dict) else None
    return isinstance(script, str) and bool(script.strip()) and _NPM_PLACEHOLDER not in script


def _python_tests(repo: Path) -> list[Path]:
    found: list[Path] = []
    for pattern in ("test_*.py", "*_test.py"):
        for path in repo.rglob(pattern):
            if not any(part.startswith(".") or part in ("node_modules", "venv") for part in path.parts):
                found.append(path)
    return found


def _uses_pytest(repo: Path) -> bool:
    if any((repo / name).is_file() for name in _PYTEST_CONFIG):
        return True
    for name, section in (("pyproject.toml", "[tool.pytest"), ("setup.cfg", "[tool:pytest]")):
        path = repo / name
        if path.is_file() and section in path.read_text(errors="replace"):
            return True
    return False


def discover(repo: Path, configured: str | None) -> tuple[str | None, str]:
    """(command, how it was found); (None, why not) when the repository has no recognisable tests."""
    if configured and configured.strip():
        return configured.strip(), "configured test_command"
    if _makefile_has_test(repo):
        return "make test", "Makefile `test` target"
    if _package_json_test(repo):
        return "npm test", "package.json `test` script"
    if (repo / "go.mod").is_file():
        return "go test -v ./...", "go.mod"
    if (repo / "Cargo.toml").is_file():
        return "cargo test", "Cargo.toml"
    tests = _python_tests(repo)
    if tests:
        if _uses_pytest(repo):
            return "python3 -m pytest -q", "pytest configuration and test files"
        start = "tests" if (repo / "tests").is_dir() else "."
        return (
            f"python3 -m unittest discover -v -s {start} -t .",
            f"Python test files ({len(tests)}), run with unittest",
        )
    return None, "no test command configured and none discovered"


# --- parsing --------------------------------------------------------------------------------------------
_PYTEST_SUMMARY = re.compile(r"^=*\s*(?P<body>(?:\d+ \w+(?:, )?)+) in [\d.]+s", re.MULTILINE)
_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests? in", re.MULTILINE)
_UNITTEST_END = re.compile(r"^(OK|FAILED)(?: \((.*)\))?\s*$", re.MULTILINE)
_JEST = re.compile(r"^Tests:\s+(.*\d+ total)", re.MULTILINE)
_NODE = re.compile(r"^(?:#|ℹ) (pass|fail) (\d+)\s*$", re.MULTILINE)
_CARGO = re.compile(r"^test result: \w+\. (\d+) passed; (\d+) failed", re.MULTILINE)
_GO = re.compile(r"^\s*--- (PASS|FAIL): ", re.MULTILINE)
_PLAIN = re.compile(r"(\d+) passed,? (\d+) failed|(\d+) failed,? (\d+) passed", re.IGNORECASE)


def _pytest(output: str) -> tuple[int, int] | None:
    matches = list(_PYTEST_SUMMARY.finditer(output))
    if not matches:
        return None
    counts = {kind.rstrip("s"): int(n) for n, kind in _COUNT.findall(matches[-1]["body"])}
    return counts.get("passed", 0), counts.get("failed", 0) + counts.get("error", 0)


def _unittest(output: str) -> tuple[int, int] | None:
    ran = _UNITTEST_RAN.findall(output)
    end = list(_UNITTEST_END.finditer(output))
    if not ran or not end:
        return None
    details = dict(item.strip().split("=", 1) for item in (end[-1].group(2) or "").split(",") if "=" in item)
    failed = int(details.get("failures", 0)) + int(details.get("errors", 0))
    not_run = int(details.get("skipped", 0)) + int(details.get("expected failures", 0))
    return int(ran[-1]) - failed - not_run, failed


def _jest(output: str) -> tuple[int, int] | None:
    match = list(_JEST.finditer(output))
    if not match:
        return None
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|failed)", match[-1].group(1)))
    return counts.get("passed", 0), counts.get("failed", 0)


def _node(output: str) -> tuple[int, int] | None:
    counts = {kind: int(n) for kind, n in _NODE.findall(output)}
    return (counts.get("pass", 0), counts.get("fail", 0)) if counts else None


def _cargo(output: str) -> tuple[int, int] | None:
    results = _CARGO.findall(output)
    if not results:
        return None
    return sum(int(p) for p, _ in results), sum(int(f) for _, f in results)


def _go(output: str) -> tuple[int, int] | None:
    results = _GO.findall(output)
    if not results:
        return None
    return results.count("PASS"), results.count("FAIL")


def _plain(output: str) -> tuple[int, int] | None:
    matches = list(_PLAIN.finditer(output))
    if not matches:
        return None
    m = matches[-1]
    if m.group(1) is not None:
        return int(m.group(1)), int(m.group(2))
    return int(m.group(4)), int(m.group(3))


# Most specific first: a runner's own summary wins over the generic "N passed, N failed" line.
_PARSERS = (_jest, _cargo, _pytest, _unittest, _node, _go, _plain)


def parse_counts(output: str) -> tuple[int | None, int | None]:
    """(passed, failed) as the runner printed them; (None, None) when no known summary is found."""
    for parser in _PARSERS:
        counts = parser(output)
        if counts is not None:
            return counts
    return None, None


# --- running --------------------------------------------------------------------------------------------
def test_env(home: Path) -> dict[str, str]:
    """The same kind of allowlisted environment the agent gets: no token of any kind."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "HOME": str(home),
        "CI": "true",  # runners then skip watch modes and interactive prompts
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("LC_ALL", "TZ"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def prepare_tree(repo: Path, dest: Path, sha: str) -> Path:
    """A checkout of `sha` of its own (no shared objects, no hardlinks), made before the agent runs;
    it is never mounted into the agent's sandbox."""
    git(None, "clone", "--quiet", "--no-hardlinks", "--no-checkout", str(repo), str(dest))
    git(dest, "checkout", "--quiet", "--detach", sha)
    return dest


def _harness_paths(command: str, changed: list[str]) -> list[str]:
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    named = {os.path.normpath(w) for w in words if not w.startswith(("-", "/")) and ".." not in w}
    return [p for p in changed if Path(p).name in HARNESS_NAMES or p.endswith(".mk") or p in named]


def apply_patch(tree: Path, patch: str, base_sha: str, command: str) -> list[str]:
    """Apply the agent's patch to the fresh `tree`, then put every harness file it changed back to
    `base_sha`'s version (a file the patch added is removed). Returns the paths put back.

    The worker's git on its own checkout: `git apply` only writes the work tree (it refuses paths in
    .git and beyond symlinks), and the clone's config is the worker's, so nothing of the patch runs.
    """
    git(tree, "apply", "--index", "--binary", "--whitespace=nowarn", input=patch)
    changed = [
        p for p in git(tree, "diff", "--cached", "--name-only", "--no-renames", base_sha).splitlines() if p
    ]
    reset = _harness_paths(command, changed)
    for path in reset:
        if git(tree, "ls-tree", "--name-only", base_sha, "--", path).strip():
            git(tree, "checkout", base_sha, "--", path)
        else:
            git(tree, "rm", "--quiet", "--force", "--", path)
    return reset


async def measure(
    sandbox: Sandbox,
    tree: Path,
    patch: str,
    command: str | None,
    discovered: str,
    *,
    base_sha: str,
    base_name: str,
    timeout_s: float = TEST_TIMEOUT_S,
) -> TestEvidence:
    """The evidence for `patch`: applied to the fresh `tree` (a checkout of `base_sha`), harness
    reset, tests run in a new sandbox without network."""
    source = f"{base_name} at {base_sha[:12]} plus the agent's patch, in a fresh checkout"
    if command is None:
        return TestEvidence(command=None, ran=False, discovered=discovered, source=source)
    reset = await asyncio.to_thread(apply_patch, tree, patch, base_sha, command)
    evidence = await run_tests(sandbox, tree, command, discovered, timeout_s=timeout_s)
    return evidence.model_copy(update={"source": source, "harness_reset": reset[:50]})


async def run_tests(
    sandbox: Sandbox, repo: Path, command: str | None, discovered: str, *, timeout_s: float = TEST_TIMEOUT_S
) -> TestEvidence:
    """Run `command` in `repo` with a shell, a minimal environment, in a new sandbox without network;
    never raises for test failures. Whatever the tests start ends with the sandbox."""
    if command is None:
        return TestEvidence(command=None, ran=False, discovered=discovered)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tests-home-") as home:
        chunks: list[bytes] = []
        size = 0
        timed_out = False
        async with sandbox.process(
            ["sh", "-c", command],
            cwd=repo,
            env=test_env(Path(home)),
            writable=[repo, Path(home)],
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        ) as proc:
            assert proc.stdout is not None
            try:
                async with asyncio.timeout(timeout_s):
                    while data := await proc.stdout.read(65536):
                        chunks.append(data)
                        size += len(data)
                        while size > MAX_OUTPUT_BYTES and len(chunks) > 1:
                            size -= len(chunks.pop(0))
                    await proc.wait()
            except TimeoutError:
                timed_out = True
        exit_code = None if timed_out else proc.returncode
    output = b"".join(chunks).decode("utf-8", "replace")
    passed, failed = parse_counts(output)
    tail = output[-OUTPUT_TAIL_CHARS:]
    if timed_out:
        tail = (tail + f"\n[killed after {timeout_s:g} s]")[-OUTPUT_TAIL_CHARS:]
    return TestEvidence(
        command=command,
        ran=True,
        exit_code=exit_code,
        passed=passed,
        failed=failed,
        duration_s=round(time.monotonic() - started, 3),
        output_tail=tail,
        discovered=discovered,
    )
