"""Test evidence measured by the service, never taken on the model's word.

After the agent has finished, the sandbox runs the project's test command itself: the one configured
in JIRA_PROJECT_MAP (`test_command`), else one discovered from the repository (and named, so the MR
says how it was found). The real exit code, the pass/fail counts where the runner prints them, the
duration and a bounded output tail become the `TestEvidence` the MR description shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import tempfile
import time
from pathlib import Path

from executors.tasks import TestEvidence

TEST_TIMEOUT_S = 900
OUTPUT_TAIL_CHARS = 3000
MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # what is kept in memory while the tests run
_NPM_PLACEHOLDER = "no test specified"
_PYTEST_CONFIG = ("pytest.ini", "conftest.py", "tox.ini")


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


async def run_tests(
    repo: Path, command: str | None, discovered: str, *, timeout_s: float = TEST_TIMEOUT_S
) -> TestEvidence:
    """Run `command` in `repo` with a shell and a minimal environment; never raises for test failures."""
    if command is None:
        return TestEvidence(command=None, ran=False, discovered=discovered)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tests-home-") as home:
        proc = await asyncio.create_subprocess_exec(
            "sh",
            "-c",
            command,
            cwd=repo,
            env=test_env(Path(home)),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        chunks: list[bytes] = []
        size = 0
        timed_out = False
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
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the runner and anything it left behind
            if proc.returncode is None:
                await proc.wait()
    output = b"".join(chunks).decode("utf-8", "replace")
    passed, failed = parse_counts(output)
    tail = output[-OUTPUT_TAIL_CHARS:]
    if timed_out:
        tail = (tail + f"\n[killed after {timeout_s:g} s]")[-OUTPUT_TAIL_CHARS:]
    return TestEvidence(
        command=command,
        ran=True,
        exit_code=None if timed_out else proc.returncode,
        passed=passed,
        failed=failed,
        duration_s=round(time.monotonic() - started, 3),
        output_tail=tail,
        discovered=discovered,
    )
