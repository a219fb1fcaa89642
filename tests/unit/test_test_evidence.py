"""Test evidence: discovery per ecosystem, pass/fail counts per runner, and a real measured run."""

from __future__ import annotations

import json

import pytest

from executors.test_evidence import discover, parse_counts, run_tests

PYTEST = "....F.\n=========================== short test summary info ============================\nFAILED t.py::x\n1 failed, 5 passed, 1 skipped in 0.12s\n"
PYTEST_ERRORS = "===== 2 passed, 1 error in 0.30s =====\n"
UNITTEST_FAIL = "..F\n----------------------------------------------------------------------\nRan 3 tests in 0.001s\n\nFAILED (failures=1)\n"
UNITTEST_SKIP = "Ran 4 tests in 0.002s\n\nOK (skipped=1)\n"
JEST = "Test Suites: 1 failed, 1 total\nTests:       2 failed, 7 passed, 9 total\nSnapshots:   0 total\n"
NODE_TAP = "# tests 4\n# suites 0\n# pass 3\n# fail 1\n# cancelled 0\n"
NODE_SPEC = "ℹ tests 2\nℹ pass 2\nℹ fail 0\n"
GO = "=== RUN   TestA\n--- PASS: TestA (0.00s)\n=== RUN   TestB\n--- FAIL: TestB (0.00s)\n--- PASS: TestC (0.00s)\nFAIL\n"
CARGO = (
    "test result: ok. 3 passed; 0 failed; 0 ignored\n\ntest result: FAILED. 1 passed; 2 failed; 0 ignored\n"
)
PLAIN = "custom runner\n10 passed, 2 failed\n"


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (PYTEST, (5, 1)),
        (PYTEST_ERRORS, (2, 1)),
        (UNITTEST_FAIL, (2, 1)),
        (UNITTEST_SKIP, (3, 0)),
        (JEST, (7, 2)),
        (NODE_TAP, (3, 1)),
        (NODE_SPEC, (2, 0)),
        (GO, (2, 1)),
        (CARGO, (4, 2)),
        (PLAIN, (10, 2)),
        ("make: *** No rule to make target\n", (None, None)),
        ("", (None, None)),
    ],
)
def test_counts_per_runner(output, expected):
    assert parse_counts(output) == expected


def test_discovery_order_and_reasons(tmp_path):
    assert discover(tmp_path, None) == (None, "no test command configured and none discovered")
    assert discover(tmp_path, "  tox -e py  ") == ("tox -e py", "configured test_command")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("")
    assert discover(tmp_path, None)[0] == "python3 -m unittest discover -v -s tests -t ."
    (tmp_path / "conftest.py").write_text("")
    assert discover(tmp_path, None)[0] == "python3 -m pytest -q"
    (tmp_path / "package.json").write_text(
        json.dumps({"scripts": {"test": 'echo "Error: no test specified" && exit 1'}})
    )
    assert discover(tmp_path, None)[0] == "python3 -m pytest -q"  # npm's placeholder is no test script
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert discover(tmp_path, None) == ("npm test", "package.json `test` script")
    (tmp_path / "Makefile").write_text("VAR := 1\ntest:\n\tpytest\n")
    assert discover(tmp_path, None) == ("make test", "Makefile `test` target")


def test_broken_package_json_is_not_a_test_script(tmp_path):
    (tmp_path / "package.json").write_text("{not json")
    assert discover(tmp_path, None)[0] is None


async def test_run_measures_exit_code_counts_and_tail(tmp_path, process_sandbox):
    evidence = await run_tests(
        process_sandbox,
        tmp_path,
        "echo '3 passed, 1 failed'; echo GITLAB_TOKEN=$GITLAB_TOKEN; exit 3",
        "configured",
    )
    assert evidence.ran and evidence.exit_code == 3
    assert (evidence.passed, evidence.failed) == (3, 1)
    assert "GITLAB_TOKEN=\n" in evidence.output_tail  # the allowlisted environment has no token
    assert evidence.duration_s >= 0 and evidence.discovered == "configured"


async def test_run_without_command_is_not_run(tmp_path, process_sandbox):
    evidence = await run_tests(
        process_sandbox, tmp_path, None, "no test command configured and none discovered"
    )
    assert not evidence.ran and evidence.exit_code is None


async def test_run_times_out_and_kills(tmp_path, process_sandbox):
    evidence = await run_tests(
        process_sandbox, tmp_path, "echo started; sleep 30", "configured", timeout_s=0.5
    )
    assert evidence.exit_code is None and "killed after 0.5 s" in evidence.output_tail
    assert evidence.duration_s < 10


async def test_output_tail_is_bounded(tmp_path, process_sandbox):
    evidence = await run_tests(process_sandbox, tmp_path, "yes line | head -n 100000", "configured")
    assert evidence.exit_code == 0 and len(evidence.output_tail) <= 3000
