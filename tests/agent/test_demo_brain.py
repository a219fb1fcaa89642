"""DemoBrain: diff parsing, its rules, and full demo runs through the real CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from executors.copilot_cli import CopilotRun, run_copilot
from standins.brains import DemoBrain, added_lines, review_findings
from standins.model_server import ModelServer

DIFF = """Please review this merge request.

```diff
diff --git a/app/views.py b/app/views.py
index 1111111..2222222 100644
--- a/app/views.py
+++ b/app/views.py
@@ -10,3 +10,6 @@ def handler(request):
     data = request.body
-    value = parse(data)
+    value = eval(data)
+    try:
+        save(value)
+    except:
     return value
@@ -40,2 +43,3 @@ def other():
     pass
+    print("debug")

diff --git a/settings.py b/settings.py
new file mode 100644
--- /dev/null
+++ b/settings.py
@@ -0,0 +1,2 @@
+DB_PASSWORD = "hunter2"
+# TODO: move to env
diff --git a/gone.py b/gone.py
deleted file mode 100644
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-eval(x)
```
"""


def test_added_lines_carry_new_side_line_numbers() -> None:
    lines = [(a.path, a.line, a.text.strip()) for a in added_lines(DIFF)]
    assert lines == [
        ("app/views.py", 11, "value = eval(data)"),
        ("app/views.py", 12, "try:"),
        ("app/views.py", 13, "save(value)"),
        ("app/views.py", 14, "except:"),
        ("app/views.py", 44, 'print("debug")'),
        ("settings.py", 1, 'DB_PASSWORD = "hunter2"'),
        ("settings.py", 2, "# TODO: move to env"),
    ]


def test_rules_produce_findings_with_obvious_suggestions() -> None:
    findings = {(f["file"], f["line"]): f for f in review_findings(DIFF)}
    assert sorted(findings) == [
        ("app/views.py", 11),
        ("app/views.py", 14),
        ("app/views.py", 44),
        ("settings.py", 1),
        ("settings.py", 2),
    ]
    assert findings[("app/views.py", 11)]["severity"] == "critical"
    assert findings[("app/views.py", 14)]["suggestion"] == "    except Exception:"
    assert findings[("settings.py", 1)]["suggestion"] == 'DB_PASSWORD = os.environ["DB_PASSWORD"]'
    assert "suggestion" not in findings[("app/views.py", 44)]


def test_garbage_input_yields_no_findings() -> None:
    assert review_findings("```diff\n@@ nonsense\n+++\n+eval(\n```") == []
    assert review_findings("") == []


async def test_demo_review_through_the_cli(
    model_server: ModelServer, make_run: Callable[..., CopilotRun]
) -> None:
    model_server.brain = DemoBrain()
    outcome = await run_copilot(make_run(DIFF))
    assert sorted((f.file, f.line, f.severity) for f in outcome.findings) == [
        ("app/views.py", 11, "critical"),
        ("app/views.py", 14, "minor"),
        ("app/views.py", 44, "info"),
        ("settings.py", 1, "critical"),
        ("settings.py", 2, "info"),
    ]
    assert outcome.summary == "Found 5 issue(s) in app/views.py, settings.py."
    assert outcome.final_message == "Review complete."


async def test_demo_discussion_and_implementation(
    model_server: ModelServer, make_run: Callable[..., CopilotRun], workdir: Path
) -> None:
    model_server.brain = DemoBrain()
    discussion = await run_copilot(
        make_run("Thread context.\n\nWhy is eval dangerous here?", kind="discussion")
    )
    assert discussion.reply is not None and discussion.reply.startswith("> Why is eval dangerous here?")

    implement = await run_copilot(
        make_run("PROJ-1: create a file `docs/usage.md`.", kind="implement", write_access=True)
    )
    assert (
        (workdir / "docs" / "usage.md")
        .read_text()
        .startswith("# Notes\n\nCreated by the demo model for: PROJ-1")
    )
    assert implement.modified_files == ["docs/usage.md"]
    assert implement.implementation is not None
    assert implement.implementation.commit_summary == "docs: add docs/usage.md"
