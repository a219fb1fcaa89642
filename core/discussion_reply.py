"""The agent's reply in an MR thread: its answer, what happened to its change, and the hidden marker
that makes the reply findable, so a retried workflow never answers the same note twice.

Text the model wrote is stripped of unsafe characters and of HTML comments, so it cannot hide
content from readers or forge one of our markers.
"""

from __future__ import annotations

from contracts.discussion import DiscussionRunResult
from core import markers
from core.outbound_text import code_span, model_text
from core.sanitize import strip_unsafe

MAX_ANSWER_CHARS = 10_000


def clean_model_text(text: str, limit: int = MAX_ANSWER_CHARS) -> str:
    return model_text(text, limit)


def _push_line(run: DiscussionRunResult, branch: str) -> str:
    sha = f"`{run.commit_sha[:12]}`"
    where = code_span(branch) if branch else "the source branch"
    files = ", ".join(code_span(f) for f in run.files_changed[:10])
    files_line = f"\nFiles: {files}" if files else ""
    summary = clean_model_text(run.change_summary, 1500)
    summary_line = f"\n\n{summary}" if summary else ""
    if run.push == "pushed":
        title = clean_model_text(run.commit_title, 200)
        return f":white_check_mark: Pushed {sha} to {where}: {title}{files_line}{summary_line}"
    if run.push == "rebased":
        return (
            f":white_check_mark: {where} changed while I worked; I rebased my commit onto it and "
            f"pushed {sha}: {clean_model_text(run.commit_title, 200)}{files_line}{summary_line}"
        )
    if run.push == "earlier":
        title = clean_model_text(run.commit_title, 200)
        return f":white_check_mark: The change for this note was pushed as {sha}: {title}"
    if run.push == "branch_moved":
        return (
            f":warning: {where} changed while I worked and my change does not apply on top of it, "
            "so I pushed nothing. Please ask again and I will start from the new commits."
        )
    if run.push == "too_large":
        return ":warning: My change was too large to push from a discussion, so I pushed nothing."
    if run.push_refusal:
        return f":no_entry: I pushed nothing: {run.push_refusal}."
    if run.push == "not_allowed":
        return ":information_source: I did not push any change for this request."
    return ""


def render_reply(run: DiscussionRunResult, *, note_id: int, branch: str, behavior: str) -> tuple[str, str]:
    """(text, marker) of the reply."""
    parts = [clean_model_text(run.reply) or "I looked into this but have nothing to add."]
    if push := _push_line(run, branch):
        parts.append(push)
    if run.resolution is not None:
        label = {"resolved": "Resolved", "partial": "Partly addressed", "not_addressed": "Not addressed yet"}
        verdict = f"**{label[run.resolution]}**: {clean_model_text(run.resolution_reply, 1000)}".rstrip(": ")
        if run.resolution == "resolved" and behavior == "suggest":
            verdict += " You can resolve this thread."
        parts.append(verdict)
    return "\n\n".join(parts), reply_marker(note_id)


def reply_marker(note_id: int) -> str:
    return markers.marker(markers.REPLY, note=str(note_id))


def render_failure(reason: str, *, note_id: int, workflow_id: str) -> tuple[str, str]:
    text = (
        f":warning: I could not complete this request ({strip_unsafe(reason)[:200]}). Operators can find "
        f"the run as workflow `{workflow_id}` in Temporal; mention me in a new note to try again."
    )
    return text, reply_marker(note_id)
