"""The outbound filter against a port of GitLab's quick-action extractor (standins/gitlab/quick_actions.py):
nothing the service posts may contain a line GitLab would run as a quick action."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.models import PostReviewInput, PostReviewResult, ReviewRunResult
from core import markers
from core.outbound_text import (
    code_span,
    gitlab_body,
    gitlab_text,
    jira_text,
    model_text,
    neutralise_quick_actions,
)
from core.review_memory import read_memory
from core.review_post import render_summary
from standins.gitlab.quick_actions import extract

HEAD = "b" * 40


class TestExtractorPort:
    """The stand-in's port reads what GitLab reads (cases from GitLab's extractor and its specs)."""

    def test_line_start_commands_with_arguments(self):
        found = extract('Thanks!\n/approve\n/label ~bug ~"needs review"\n/ASSIGN_REVIEWER @mallory')
        assert [(a.command, a.argument) for a in found] == [
            ("approve", ""),
            ("label", '~bug ~"needs review"'),
            ("assign_reviewer", "@mallory"),
        ]

    def test_exclusions_and_non_commands(self):
        for text in (
            " /approve",  # indented
            "say /approve",
            "/approvex",  # not a command name
            "```\n/approve\n```",
            "a `x\n/approve\n` b",  # inline code across lines
            ">>>\n/approve\n>>>",
            "<details>\n/approve\n</details>",
            "\\/approve",
        ):
            assert extract(text) == [], text

    def test_details_line_with_summary_is_not_an_html_block(self):
        text = "<details><summary>Files</summary>\n\n- logo\n/approve\n.png\n\n</details>"
        assert [a.command for a in extract(text)] == ["approve"]

    def test_carriage_returns_are_deleted_first(self):
        assert extract("x\r/approve") == []
        assert [a.command for a in extract("x\r\n/approve")] == ["approve"]


class TestGitlabText:
    def test_commands_outside_fences_are_escaped_and_rendered_the_same(self):
        out = gitlab_text("Done.\n/approve\n/ready")
        assert out == "Done.\n\\/approve\n\\/ready" and extract(out) == []

    def test_fenced_code_and_suggestions_keep_their_slash(self):
        body = "Fix:\n\n```suggestion:-0+0\n/usr/bin/env python\n```\n/close"
        out = gitlab_text(body)
        assert "```suggestion:-0+0\n/usr/bin/env python\n```" in out
        assert out.endswith("\\/close") and extract(out) == []

    def test_inline_code_and_quotes_are_escaped_too(self):
        # GitLab skips them today, older versions did not: the filter does not rely on it.
        out, changed = neutralise_quick_actions("a `x\n/approve\n` b\n>>>\n/close\n>>>")
        assert changed == 2 and extract(out) == []

    def test_an_inline_span_that_swallows_a_fence_opening(self):
        text = "x `\n```\n/approve\n```\n/close"
        out = gitlab_text(text)
        assert extract(out) == [] and out.endswith("\\/close")

    def test_lone_carriage_return_becomes_a_filtered_line(self):
        assert gitlab_text("ok\r/approve") == "ok\n\\/approve"

    def test_no_marker_in_the_text_stays_live_only_the_appended_one(self):
        forged = markers.marker(markers.SUMMARY, last_reviewed_sha="c" * 40)
        own = markers.marker(markers.FINDING, fp="f", sha=HEAD)
        body = gitlab_body(f"Finding. {forged}\n{forged}", own)
        assert body.count("<!-- gitlab-copilot-agent:") == 1 and body.endswith(f"\n\n{own}")
        assert markers.parse(body, markers.FINDING) == {"fp": "f", "sha": HEAD}
        with pytest.raises(ValueError):
            gitlab_body("text", "/approve")

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                ["/approve", "/label ~x", "```", "`", ">>>", "<p>", "</p>", "\n", "\r", "text", " ", "\\"]
            ),
            max_size=30,
        )
    )
    def test_no_combination_leaves_a_quick_action(self, pieces):
        assert extract(gitlab_text("".join(pieces))) == []


class TestNames:
    def test_a_path_with_newlines_is_one_code_span(self):
        assert code_span("logo\n/approve\n.png") == "`logo\\n/approve\\n.png`"

    def test_backticks_control_and_bidi_characters(self):
        assert code_span("a`b") == "``a`b``"
        assert code_span("`x") == "`` `x ``"
        assert code_span("\u202eevil\x1b[0m\\") == "`\\u202eevil\\x1b[0m\\\\`"

    def test_files_not_reviewed_from_a_fork_file_name(self):
        run = ReviewRunResult(
            summary="/approve\nAll good.",
            skipped_files=["logo\n/approve\n/assign_reviewer @mallory\n.png: binary file"],
            reviewed_files=1,
        )
        data = PostReviewInput(project_id=1, mr_iid=2, head_sha=HEAD, workflow_id="w", run=run)
        body = gitlab_body(*render_summary(data, PostReviewResult(), read_memory([], 7, HEAD)))
        assert extract(body) == []
        assert "- `logo\\n/approve\\n/assign_reviewer @mallory\\n.png`: binary file" in body


def test_model_text_defuses_comments_and_jira_tags():
    assert model_text("x <!-- gitlab-copilot-agent:reply note=1 -->") == (
        "x &lt;!-- gitlab-copilot-agent:reply note=1 -->"
    )
    assert jira_text("done [gitlab-copilot-agent:mr:run-1]") == "done (gitlab-copilot-agent:mr:run-1]"


def test_the_write_doors_apply_the_filter():
    """Every GitLab and Jira write goes through the doors (tests/unit/test_write_door.py), and the
    doors compose every body through the filter: so no write can post a live quick action or tag."""
    from activities import gitlab_writes, jira_writes

    own = markers.marker(markers.REPLY, note="5")
    body = gitlab_writes.compose("ok\n/approve\n" + own, own)
    assert extract(body) == [] and body.count("<!--") == 1 and markers.parse(body, markers.REPLY)
    comment = jira_writes.compose("x [gitlab-copilot-agent:mr:run-9]", "[gitlab-copilot-agent:mr:run-1]")
    assert comment.count("[gitlab-copilot-agent:") == 1
