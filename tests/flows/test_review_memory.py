"""Review memory (issue 4): incremental reviews, no repeats, dismissals, auto-resolution,
force-push fallback, stale runs superseded, restarts losing nothing."""

from __future__ import annotations

import asyncio
import re
import subprocess

import pytest

from contracts.ids import review_id
from contracts.models import ReviewMRInput, ReviewMRResult
from core import markers
from devenv.stack import DEVELOPER, WEBHOOK_SECRET, running_service
from executors.git_repo import auth_args
from standins.brains import added_lines
from standins.model_server import ChatRequest, Reply
from tests.flows.helpers import agent_notes, head_sha, inline_discussions, project_id, wait_review

BASE = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
DIV = BASE + "\n\ndef div(a, b):\n    return a / b\n"  # div at 9-10
MUL = DIV + "\n\ndef mul(a, b):\n    return a * b\n"  # mul at 13-14
MOD = MUL + "\n\ndef mod(a, b):\n    return a % b\n"  # mod at 17-18
RULES = {  # text of an added line -> (title, severity)
    "return a / b": ("Division by zero is not handled", "major"),
    "def div(a, b):": ("The name div is unclear", "minor"),
    "return a * b": ("mul has no test", "minor"),
    "def mul(a, b):": ("mul lacks a docstring", "info"),
    "return a % b": ("Modulo by zero is not handled", "major"),
}


class ReviewerBrain:
    """Reports a finding for every added line it has a rule for, judges prior threads from a
    script, and can be told to repeat earlier findings (as real models do)."""

    def __init__(self) -> None:
        self.repeat: list[tuple[str, int, str]] = []  # (file, line, title) to report again
        self.verdicts: dict[str, tuple[str, str]] = {}  # title -> (status, reply)
        self.prompts: list[str] = []

    def __call__(self, request: ChatRequest) -> Reply:
        if not request.offers("reviewer-finish_review"):
            return Reply.text("?")
        if request.turn == 0:
            self.prompts.append(request.prompt)
            calls = []
            for added in added_lines(request.prompt):
                if added.text.strip() in RULES:
                    title, severity = RULES[added.text.strip()]
                    calls.append(
                        (
                            "reviewer-report_finding",
                            dict(
                                file=added.path,
                                line=added.line,
                                severity=severity,
                                title=title,
                                body="Because.",
                            ),
                        )
                    )
            for file, line, title in self.repeat:
                calls.append(
                    (
                        "reviewer-report_finding",
                        dict(file=file, line=line, severity="major", title=title, body="Again."),
                    )
                )
            for thread_id, title in re.findall(
                r"thread_id `([^`]+)` at [^\n]*?<untrusted source=\"earlier_finding\">\n([^\n]*)",
                request.prompt,
            ):
                if title in self.verdicts:
                    status, reply = self.verdicts[title]
                    calls.append(
                        ("reviewer-report_resolution", dict(thread_id=thread_id, status=status, reply=reply))
                    )
            if calls:
                return Reply.calls(*calls)
        if request.turn <= 1:
            return Reply.call("reviewer-finish_review", summary="Reviewed.")
        return Reply.text("Done.")


def push(stack, content: str, message: str = "change") -> str:
    return stack.gitlab.commit("group/app", "feature", {"app/calc.py": content}, message, author=DEVELOPER)


def titles(stack, iid=1) -> list[str]:
    return sorted(d["notes"][0]["body"].splitlines()[0] for d in inline_discussions(stack, iid))


def summary_notes(stack, iid=1) -> list[dict]:
    return [n for n in agent_notes(stack, iid) if markers.parse(n["body"], markers.SUMMARY)]


async def reviewed(stack, sha: str) -> ReviewMRResult:
    workflow_id, _ = await wait_review(stack, 1, sha)
    return await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()


async def test_pushes_are_reviewed_incrementally_without_repeats(stack):
    brain = stack.model.brain.brain = ReviewerBrain()
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    push(stack, DIV)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    first = await reviewed(stack, head_sha(stack, 1))
    assert first.posted.inline == 2

    brain.repeat = [("app/calc.py", 10, "Division by zero is not handled")]  # the model repeats itself
    second = await reviewed(stack, push(stack, MUL))
    assert "+def mul(a, b):" in brain.prompts[1] and "+def div(a, b):" not in brain.prompts[1]
    assert "Incremental review" in summary_notes(stack)[0]["body"]
    assert second.posted.inline == 2 and second.posted.duplicates_dropped == 1

    third = await reviewed(stack, push(stack, MOD))
    assert "+def mod(a, b):" in brain.prompts[2] and "+def mul(a, b):" not in brain.prompts[2]
    assert third.posted.inline == 1 and third.posted.duplicates_dropped == 1
    assert "Division by zero is not handled" in brain.prompts[2]  # shown as earlier feedback
    assert len(titles(stack)) == 5  # 2 + 2 + 1, no repeat
    summaries = summary_notes(stack)
    assert len(summaries) == 1  # edited in place, not re-posted
    assert markers.parse(summaries[0]["body"], markers.SUMMARY)["last_reviewed_sha"] == head_sha(stack, 1)


# RESOLUTION_BEHAVIOR: auto-resolve (reply and resolve), suggest (the seed's default: reply, leave
# the thread to a human) and off (neither); the verdicts and the ledger are the same in all three.
@pytest.mark.parametrize(
    "settings_overrides",
    [{"resolution_behavior": b} for b in ("auto-resolve", "suggest", "off")],
    ids=["auto-resolve", "suggest", "off"],
)
async def test_dismissed_threads_stay_quiet_and_fixed_threads_are_resolved(stack, settings_overrides):
    behavior = settings_overrides["resolution_behavior"]
    brain = stack.model.brain.brain = ReviewerBrain()
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    push(stack, MUL)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    await reviewed(stack, head_sha(stack, 1))
    threads = {d["notes"][0]["body"].splitlines()[0]: d for d in inline_discussions(stack, 1)}
    assert len(threads) == 4
    # A human resolves one thread and answers "won't fix" on another.
    import gitlab as gitlab_lib

    gl = gitlab_lib.Gitlab(stack.gitlab.url, private_token=stack.gitlab.store.user_named(DEVELOPER).token)
    mr = gl.projects.get("group/app").mergerequests.get(1)
    resolved_by_human = mr.discussions.get(threads["**[minor]** The name div is unclear"]["id"])
    resolved_by_human.resolved = True
    resolved_by_human.save()
    stack.gitlab.add_note(
        "group/app",
        1,
        DEVELOPER,
        "Won't fix: intentional for now.",
        discussion_id=threads["**[minor]** mul has no test"]["id"],
    )

    brain.verdicts = {
        "Division by zero is not handled": ("resolved", "div now guards b == 0."),
        "mul lacks a docstring": ("partial", "A comment was added, not a docstring."),
    }
    brain.repeat = [("app/calc.py", 9, "The name div is unclear"), ("app/calc.py", 14, "mul has no test")]
    fixed = MUL.replace("    return a / b", "    return a / b if b else 0")
    result = await reviewed(stack, push(stack, fixed))
    assert result.posted.resolved == 1 and result.posted.partial == 1
    assert result.posted.inline == 0 and result.posted.duplicates_dropped == 2
    prompt = brain.prompts[1]
    dismissed_section = prompt.split("# Dismissed by humans")[1].split("# Files not shown")[0]
    assert "The name div is unclear" in dismissed_section and "mul has no test" in dismissed_section

    after = {
        d["notes"][0]["body"].splitlines()[0]: d
        for d in stack.gitlab.discussions("group/app", 1)
        if d["notes"][0].get("type") == "DiffNote"
    }
    division = after["**[major]** Division by zero is not handled"]
    docstring = after["**[info]** mul lacks a docstring"]
    assert division["notes"][0]["resolved"] is (behavior == "auto-resolve")
    assert docstring["notes"][0]["resolved"] is False
    if behavior == "off":  # no reply, no resolution: the threads look as before the push
        assert len(division["notes"]) == 1 and len(docstring["notes"]) == 1
    else:
        assert division["notes"][-1]["body"].startswith("**Resolved**")
        assert docstring["notes"][-1]["body"].startswith("**Partly addressed**")
    assert result.posted.threads_resolved == (1 if behavior == "auto-resolve" else 0)
    assert after["**[minor]** mul has no test"]["notes"][0]["resolved"] is False  # humans' call, untouched


async def test_force_push_falls_back_to_a_full_review_and_says_so(stack, tmp_path):
    brain = stack.model.brain.brain = ReviewerBrain()
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    push(stack, DIV)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    first_sha = head_sha(stack, 1)
    await reviewed(stack, first_sha)

    clone = tmp_path / "clone"
    token = stack.gitlab.store.user_named(DEVELOPER).token
    git = ["git", *auth_args(token)]
    subprocess.run(
        [*git, "clone", "-q", "-b", "feature", stack.gitlab.git_url("group/app"), str(clone)], check=True
    )
    (clone / "app" / "calc.py").write_text(MUL)
    for args in (
        [
            "-c",
            "user.name=Dev",
            "-c",
            "user.email=dev@example.com",
            "commit",
            "-qa",
            "--amend",
            "-m",
            "rewritten",
        ],
        [*auth_args(token), "push", "-q", "--force", "origin", "feature"],
    ):
        subprocess.run(["git", "-C", str(clone), *args], check=True)
    assert any(record.forced for record in stack.gitlab.push_log)

    result = await reviewed(stack, head_sha(stack, 1))
    assert result.posted is not None
    body = summary_notes(stack)[0]["body"]
    assert "Full review" in body and "force-push or rebase" in body and first_sha[:8] in body
    assert "+def div(a, b):" in brain.prompts[1]  # the whole MR again


async def test_ten_quick_pushes_post_only_for_current_heads(stack):
    stack.model.brain.brain = ReviewerBrain()
    stack.gitlab.set_webhook(f"{stack.api_url}/webhook", WEBHOOK_SECRET)
    push(stack, DIV)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    shas = [head_sha(stack, 1)]
    content = DIV
    for n in range(9):
        content += f"\n\ndef f{n}(a, b):\n    return a / b\n"
        shas.append(push(stack, content, f"push {n}"))
        await asyncio.sleep(0.2)
    results = {}
    for sha in shas:
        workflow_id, description = await wait_review(stack, 1, sha, timeout=150)
        try:
            results[sha] = (
                await stack.client.get_workflow_handle(workflow_id, result_type=ReviewMRResult).result()
            ).status
        except Exception:  # noqa: BLE001 - cancelled as superseded
            results[sha] = description.status.name.lower()
    assert results[shas[-1]] == "posted"
    assert set(results.values()) <= {"posted", "superseded", "canceled", "skipped"}
    assert not [n for n in stack.gitlab.notes("group/app", 1) if markers.parse(n["body"], markers.FAILURE)]
    posted_for = {
        markers.parse(d["notes"][0]["body"], markers.FINDING)["sha"] for d in inline_discussions(stack, 1)
    }
    assert posted_for <= {sha for sha, status in results.items() if status == "posted"}
    summaries = summary_notes(stack)
    assert len(summaries) == 1
    assert markers.parse(summaries[0]["body"], markers.SUMMARY)["last_reviewed_sha"] == shas[-1]
    # The commit status of every stale head ends canceled (or was never started); only the head's passes.
    for sha, status in results.items():
        states = [s["status"] for s in stack.gitlab.commit_statuses("group/app", sha, all_=False)]
        assert states == (["success"] if status == "posted" else states) and states in (
            [],
            ["canceled"],
            ["success"],
        )
        assert status == "posted" or states != ["success"], (sha, status, states)


async def _until(what: str, check, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (found := await check()):
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
    return found


async def test_a_cancel_landing_while_a_superseded_review_ends_leaves_no_running_status(stack):
    """The moment of CI's red run: review A of a stale head is ending (its "running" status still on
    the wire) when the newer head's review cancels it. A's ending must not be cut short: "canceled"
    lands after "running", not before it, and the stale head is not left "running" for ever."""
    stack.model.brain.brain = ReviewerBrain()
    push(stack, DIV)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    pid, first = project_id(stack), head_sha(stack, 1)
    stall_s = 12.0
    stack.gitlab.stall_next(1, stall_s, path_contains=f"/statuses/{first}")  # A's "running" POST
    a = await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=1, head_sha=first),
        id=review_id(pid, 1, first),
        task_queue=stack.settings.temporal_task_queue,
        result_type=ReviewMRResult,
    )
    started = asyncio.get_running_loop().time()

    async def pending() -> list[str]:
        raw = (await a.describe()).raw_description
        return [p.activity_type.name for p in raw.pending_activities]

    await _until("A's running status on the wire", lambda: _has(pending, "set_review_status"))
    second = push(stack, MUL, "mul")  # A's head is stale now; nothing tells the service yet

    async def a_is_ending() -> bool:
        eyes = [e for e in stack.gitlab.award_emoji("group/app", 1) if e.name == "eyes"]
        return not eyes and await pending() == ["set_review_status"]

    await _until("A waiting, with its reaction cleared, for its running status", a_is_ending)
    assert stack.gitlab.commit_statuses("group/app", first) == [], "the stall ended too early for this test"
    b = await stack.client.start_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=1, head_sha=second),
        id=review_id(pid, 1, second),
        task_queue=stack.settings.temporal_task_queue,
        result_type=ReviewMRResult,
    )

    async def cancel_requested() -> bool:
        async for event in a.fetch_history_events():
            if event.HasField("workflow_execution_cancel_requested_event_attributes"):
                return True
        return False

    await _until("B's cancel of A", cancel_requested)
    assert asyncio.get_running_loop().time() - started < stall_s, "the stall ended before the cancel landed"
    assert (await a.result()).status == "superseded"
    assert (await b.result()).status == "posted"
    await _until("A's stalled running POST answered", lambda: _answered(stack, first), timeout=stall_s + 20)
    states = [s["status"] for s in stack.gitlab.commit_statuses("group/app", first, all_=False)]
    assert states == ["canceled"], states  # GitLab moves the one status running -> canceled
    assert [s["status"] for s in stack.gitlab.commit_statuses("group/app", second, all_=False)] == ["success"]


async def _answered(stack, sha: str) -> bool:
    return stack.gitlab.request_count("POST", f"/statuses/{sha}") >= 1  # recorded once answered


async def _has(pending, name: str) -> bool:
    return name in await pending()


async def test_same_head_again_posts_nothing_and_a_restart_loses_nothing(stack):
    brain = stack.model.brain.brain = ReviewerBrain()
    push(stack, DIV)
    stack.gitlab.create_mr("group/app", "feature", title="Calculator ops", author=DEVELOPER)
    pid = project_id(stack)
    first = head_sha(stack, 1)
    result = await stack.client.execute_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=1),
        id=f"manual-{first}",
        task_queue=stack.settings.temporal_task_queue,
        result_type=ReviewMRResult,
    )
    assert result.status == "posted" and result.head_sha == first
    notes_before = len(stack.gitlab.notes("group/app", 1))
    again = await stack.client.execute_workflow(
        "ReviewMR",
        ReviewMRInput(project_id=pid, mr_iid=1),
        id=f"manual-again-{first}",
        task_queue=stack.settings.temporal_task_queue,
        result_type=ReviewMRResult,
    )
    assert again.status == "skipped" and "reviewed already" in again.reason
    assert len(stack.gitlab.notes("group/app", 1)) == notes_before

    # A fresh worker and API (a restart) pick up where the last one left off, from GitLab's markers.
    second = push(stack, MUL)
    async with running_service(
        stack.settings.model_copy(update={"temporal_task_queue": stack.settings.temporal_task_queue + "-b"})
    ) as (client, _):
        after = await client.execute_workflow(
            "ReviewMR",
            ReviewMRInput(project_id=pid, mr_iid=1, head_sha=second),
            id=review_id(pid, 1, second),
            task_queue=stack.settings.temporal_task_queue + "-b",
            result_type=ReviewMRResult,
        )
    assert after.status == "posted"
    assert "+def mul(a, b):" in brain.prompts[-1] and "+def div(a, b):" not in brain.prompts[-1]
