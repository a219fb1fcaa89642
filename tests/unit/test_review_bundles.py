"""Bundling a large review: related files together, sizes respected, caps disclosed, results merged."""

from __future__ import annotations

from contracts.agent_tasks import PriorThread, RepoRef, ReviewTask
from contracts.coverage import ChangedFile, PlannedBundle
from contracts.delivery import Coverage
from contracts.models import MAX_FINDINGS_PER_MR, Finding, Resolution, ReviewRunResult
from core.review_bundles import (
    RUN_OVERHEAD_TOKENS,
    BundleLimits,
    bundle_task,
    diff_size,
    group_related,
    is_test,
    merge_runs,
    needs_bundles,
    plan_bundles,
    run_coverage,
    subject,
)
from core.review_coverage import render_coverage

LIMITS = BundleLimits(max_lines=100, max_tokens=10_000)


def f(path: str, lines: int = 10, chars: int | None = None) -> ChangedFile:
    return ChangedFile(path=path, lines=lines, chars=lines * 40 if chars is None else chars)


def paths(plan) -> list[list[str]]:
    return [b.paths for b in plan.bundles]


def test_diff_size_counts_changed_lines_not_context_or_headers():
    diff = "@@ -1,3 +1,4 @@\n a\n-b\n+c\n+d\n e\n"
    assert diff_size(diff) == (3, len(diff))
    assert diff_size("--- a/x\n+++ b/x\n@@ -0,0 +1 @@\n+x\n")[0] == 1


def test_tests_are_recognised_and_know_their_subject():
    for path in (
        "tests/test_calc.py",
        "app/calc_test.go",
        "web/calc.spec.ts",
        "src/CalcTest.java",
        "x/__tests__/calc.js",
    ):
        assert is_test(path), path
        assert subject(path) == "calc", path
    for path in ("app/calc.py", "app/latest.py", "docs/contest.md"):
        assert not is_test(path), path
    assert subject("app/calc.py") == "calc"


def test_one_run_takes_a_small_diff_and_a_large_one_needs_bundles():
    assert not needs_bundles([f("a.py", 50), f("b.py", 50)], LIMITS)
    assert needs_bundles([f("a.py", 60), f("b.py", 50)], LIMITS)
    assert needs_bundles([f("a.py", 10, chars=50_000)], LIMITS)  # few lines, long ones: tokens decide


def test_a_test_goes_with_its_code_across_directories():
    groups = group_related([f("app/util.py"), f("tests/test_calc.py"), f("app/calc.py"), f("docs/x.md")])
    assert [[g.path for g in group] for group in groups] == [
        ["app/calc.py", "tests/test_calc.py", "app/util.py"],
        ["docs/x.md"],
    ]


def test_directories_stay_together_and_bundles_respect_the_line_budget():
    files = [f(f"a/m{i}.py", 20) for i in range(4)] + [f(f"b/m{i}.py", 20) for i in range(4)]
    plan = plan_bundles(files, [], LIMITS)
    assert paths(plan) == [[f"a/m{i}.py" for i in range(4)], [f"b/m{i}.py" for i in range(4)]]
    assert all(b.lines <= LIMITS.max_lines for b in plan.bundles)
    assert not plan.not_reviewed and not plan.notes


def test_a_directory_too_big_for_one_bundle_is_split_keeping_code_with_its_test():
    files = [f("pkg/a.py", 40), f("pkg/test_a.py", 40), f("pkg/b.py", 40), f("pkg/test_b.py", 40)]
    plan = plan_bundles(files, [], LIMITS)
    assert paths(plan) == [["pkg/a.py", "pkg/test_a.py"], ["pkg/b.py", "pkg/test_b.py"]]


def test_a_file_over_one_runs_budget_gets_its_own_bundle_in_part():
    plan = plan_bundles([f("a.py", 10), f("big.py", 500), f("c.py", 10)], [], LIMITS)
    assert paths(plan) == [["a.py"], ["big.py"], ["c.py"]]
    assert [b.oversized for b in plan.bundles] == [False, True, False]


def test_every_file_is_in_exactly_one_bundle_or_listed():
    files = [f(f"d{i % 7}/sub{i % 3}/file_{i}.py", 1 + (i * 37) % 90) for i in range(300)]
    files += [f("poetry.lock", 900)]
    plan = plan_bundles(files, ["*.lock"], LIMITS)
    bundled = [p for b in plan.bundles for p in b.paths]
    assert len(bundled) == len(set(bundled)) == 300
    assert [c.path for c in plan.not_reviewed] == ["poetry.lock"]
    assert plan.not_reviewed[0].reason == "excluded by REVIEW_EXCLUDE (*.lock)"
    assert all(b.lines <= 100 for b in plan.bundles)


def test_the_bundle_cap_is_applied_and_disclosed():
    files = [f(f"d{i}/x.py", 80) for i in range(5)]
    plan = plan_bundles(files, [], BundleLimits(max_lines=100, max_tokens=10_000, max_bundles=3))
    assert len(plan.bundles) == 3
    assert [c.path for c in plan.not_reviewed] == ["d3/x.py", "d4/x.py"]
    assert {c.reason for c in plan.not_reviewed} == {"over REVIEW_MAX_BUNDLES=3"}
    assert plan.notes == [
        "This merge request needs 5 review bundles; REVIEW_MAX_BUNDLES=3 allows 3, so 2 bundle(s) were not reviewed"
    ]


def test_the_token_cap_is_applied_and_disclosed():
    files = [f(f"d{i}/x.py", 80, chars=4000) for i in range(4)]  # ~1,000 tokens each
    cap = 2 * (1002 + RUN_OVERHEAD_TOKENS) + 10
    plan = plan_bundles(files, [], BundleLimits(max_lines=100, max_tokens=10_000, max_mr_tokens=cap))
    assert len(plan.bundles) == 2
    assert {c.reason for c in plan.not_reviewed} == {f"over REVIEW_MAX_TOKENS_PER_MR={cap}"}
    assert "REVIEW_MAX_TOKENS_PER_MR" in plan.notes[0] and "2 bundle(s) were not reviewed" in plan.notes[0]


def _task() -> ReviewTask:
    return ReviewTask(
        repo=RepoRef(clone_url="http://x/g/a.git", head_sha="a" * 40),
        project_path="g/a",
        mr_iid=1,
        base_sha="b" * 40,
        prior_threads=[
            PriorThread(thread_id="t1", file="a.py", line=1),
            PriorThread(thread_id="t2", file="z.py", line=1),
            PriorThread(thread_id="t3"),
        ],
    )


def test_a_bundle_sees_its_own_threads_and_general_ones_go_to_the_first():
    bundle = PlannedBundle(files=["a.py", "b.py"])
    first, ids = bundle_task(_task(), bundle, 0, 3, ["t1", "t2", "t3"])
    assert first.files == ["a.py", "b.py"] and "bundle 1 of 3" in first.bundle_note
    assert [t.thread_id for t in first.prior_threads] == ["t1", "t3"] and ids == ["t1", "t3"]
    second, ids = bundle_task(_task(), PlannedBundle(files=["z.py"]), 1, 3, ["t1", "t2", "t3"])
    assert [t.thread_id for t in second.prior_threads] == ["t2"] and ids == ["t2"]


def test_run_coverage_lists_what_the_reviewer_did_not_see():
    lines = run_coverage(
        ["a.py"], [("b.bin", "binary file")], [("big.py", "first 100")], expected=["a.py", "gone.py"]
    )
    assert {(c.path, c.state, c.excluded) for c in lines.files} == {
        ("a.py", "reviewed", False),
        ("b.bin", "not_reviewed", True),  # by its nature: listed, not a gap
        ("big.py", "partly", False),
        ("gone.py", "not_reviewed", False),
    }
    assert [g.path for g in lines.gaps] in (["big.py", "gone.py"], ["gone.py", "big.py"])


def test_merge_dedupes_findings_caps_them_by_severity_and_keeps_one_verdict_per_thread():
    dup = Finding(file="a.py", line=3, title="Avoid eval", severity="critical")
    one = ReviewRunResult(
        findings=[dup, Finding(file="a.py", line=9, title="Nit", severity="info")],
        resolutions=[Resolution(thread_id="t1", status="resolved")],
        summary="A fine.",
        tokens_used=10,
    )
    two = ReviewRunResult(
        findings=[dup], resolutions=[Resolution(thread_id="t1", status="partial")], tokens_used=5
    )
    coverage = Coverage.merge([run_coverage(["a.py"], [], []), run_coverage([], [("c.py", "x")], [])])
    merged = merge_runs([one, two, None], coverage, ["a cap"])
    assert [x.title for x in merged.findings] == ["Avoid eval", "Nit"]
    assert merged.resolutions == [Resolution(thread_id="t1", status="partial")]
    assert merged.tokens_used == 15 and merged.bundles == 3 and merged.reviewed_files == 1
    assert merged.skipped_files == ["c.py: x"] and merged.coverage_notes == ["a cap"]

    many = [
        ReviewRunResult(
            findings=[
                Finding(file=f"f{b}.py", line=i + 1, title=f"t{i}", severity="critical" if i == 0 else "info")
                for i in range(50)
            ]
        )
        for b in range(3)
    ]
    merged = merge_runs(many, Coverage(), [])
    assert len(merged.findings) == MAX_FINDINGS_PER_MR
    assert sum(1 for x in merged.findings if x.severity == "critical") == 3  # the most severe are kept
    assert "150 findings" in merged.coverage_notes[0] and "50 of lower severity" in merged.coverage_notes[0]


def test_the_summary_shows_every_file_and_never_reads_clean_when_incomplete():
    first = run_coverage(
        ["a.py", "b|c.py"],
        [("x.lock", "excluded by REVIEW_EXCLUDE (*.lock)")],
        [("big.py", "first 100 of 900")],
    )
    failed = run_coverage([], [("d.py", "bundle 2 of 2 was not reviewed: the agent run failed")], [])
    coverage = Coverage.merge([first, failed])
    run = ReviewRunResult(coverage=coverage, coverage_notes=["over REVIEW_MAX_BUNDLES=1"], bundles=2)
    text = render_coverage(run)
    assert "2 of 5 changed files reviewed, 1 partly reviewed, 2 not reviewed" in text
    assert "This review is incomplete**: 2 file(s)" in text and "in 2 bundles" in text
    assert "| `d.py` | not reviewed: bundle 2 of 2 was not reviewed: the agent run failed |" in text
    assert "| `b\\|c.py` | reviewed |" in text and "- over REVIEW_MAX_BUNDLES=1" in text
    assert not coverage.complete and coverage.reviewed == 2 and coverage.total == 4
    complete = run_coverage(["a.py"], [("x.lock", "excluded by REVIEW_EXCLUDE (*.lock)")], [])
    assert complete.complete and "incomplete" not in render_coverage(ReviewRunResult(coverage=complete))


def test_a_file_over_the_budget_is_cut_to_whole_hunks_or_its_first_lines():
    from executors.review_diff import first_part

    head = "diff --git a/x b/x\n--- a/x\n+++ b/x\n"
    one, two = "@@ -1,2 +1,2 @@\n-a\n+b\n c\n", "@@ -9,1 +9,3 @@\n d\n+e\n+f\n+g\n"
    assert first_part(head + one + two, 3) == (head + one, 2)
    assert first_part(head + one + two, 5) == (head + one + two, 5)
    text, shown = first_part(head + two, 2)
    assert shown == 2 and text == head + "@@ -9,1 +9,3 @@\n d\n+e\n+f\n"


def test_a_bundle_run_sees_only_its_files_and_its_oversized_file_in_part(tmp_path):
    import subprocess

    from executors.review_diff import select_review_diff
    from tests.unit.test_review_prompt_and_diff import commit, git

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    commit(repo, {"a.py": "a = 1\n"}, "base")
    base = git(repo, "rev-parse", "HEAD")
    big = "".join(f"x{i} = {i}\n" for i in range(30)) + "\n" * 5 + "".join(f"y{i} = {i}\n" for i in range(30))
    head = commit(repo, {"big.py": big, "b.py": "b = 1\n", "c.py": "c = 1\n"})
    only_b = select_review_diff(
        repo, base_sha=base, head_sha=head, since_sha=None, exclude=[], max_lines=50, only=["b.py"]
    )
    assert only_b.scope.reviewed_files == ["b.py"] and "c.py" not in only_b.text and not only_b.scope.skipped
    part = select_review_diff(
        repo, base_sha=base, head_sha=head, since_sha=None, exclude=[], max_lines=50, only=["big.py"]
    )
    assert part.scope.reviewed_files == [] and [p.path for p in part.scope.partial] == ["big.py"]
    assert "the first 50 of its 65 changed lines were reviewed" in part.scope.partial[0].reason
    assert "+x0 = 0" in part.text and "+y29 = 29" not in part.text
