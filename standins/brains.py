"""DemoBrain: a deterministic, rule-based "model" for `make demo` and the examples.

It recognises the task by the report tools the CLI offers (reviewer-*, discussion-*, implementer-*):
- review: parses the unified diff in the prompt, reports findings on the right new-side lines for
  risky added lines (eval, hard-coded secrets, bare except, debug print, TODO), then finish_review;
- discussion: replies quoting the question;
- implement: creates the file named in the prompt (or NOTES.md), then report_implementation.
Anything it cannot parse simply yields fewer findings; it never raises on odd input.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from standins.model_server import ChatRequest, Reply, ToolCall, Usage

MAX_FINDINGS = 50
_FENCE = re.compile(r"```diff\n(.*?)```", re.DOTALL)
_HUNK = re.compile(r"^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# "create a file `docs/x.md`." -> docs/x.md (a trailing full stop ends the sentence, not the name)
_FILE_NAMED = re.compile(
    r"(?:create|add)\s+(?:a\s+|the\s+)?file\s+[`'\"]?([\w./-]+?)[`'\"]?(?:\s|$|[,;:]|\.\s|\.$)"
)
_DATETIME = re.compile(r"<current_datetime>.*?</current_datetime>\s*", re.DOTALL)


@dataclass(frozen=True)
class AddedLine:
    path: str
    line: int  # number on the new side
    text: str


def added_lines(text: str) -> list[AddedLine]:
    """Added lines of every ```diff block in `text` (the whole text if it has no fenced block)."""
    blocks = _FENCE.findall(text) or [text]
    found: list[AddedLine] = []
    for block in blocks:
        path: str | None = None
        new_line = old_left = new_left = 0
        for line in block.splitlines():
            if old_left <= 0 and new_left <= 0:  # between hunks: file headers and hunk headers
                if line.startswith("diff --git "):
                    path = line.rsplit(" b/", 1)[-1] if " b/" in line else None
                elif line.startswith("+++ "):
                    target = line[4:].strip()
                    path = None if target == "/dev/null" else target.removeprefix("b/")
                elif match := _HUNK.match(line):
                    old_left = int(match.group(1) or 1)
                    new_line, new_left = int(match.group(2)), int(match.group(3) or 1)
                continue
            if line.startswith("+"):
                if path:
                    found.append(AddedLine(path, new_line, line[1:]))
                new_line, new_left = new_line + 1, new_left - 1
            elif line.startswith("-"):
                old_left -= 1
            elif line.startswith("\\"):
                continue  # "\ No newline at end of file"
            else:  # context line (a blank context line may have lost its leading space)
                new_line, new_left, old_left = new_line + 1, new_left - 1, old_left - 1
    return found


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    severity: str
    title: str
    body: str
    fix: Callable[[str], str] | None = None


def _secret_fix(line: str) -> str:
    match = re.match(r"(\s*)(\w+)(\s*=\s*)", line)
    assert match is not None  # only called on lines the rule matched
    indent, name, assign = match.groups()
    return f'{indent}{name}{assign}os.environ["{name.upper()}"]'


_RULES = (
    _Rule(
        re.compile(r"\beval\("),
        "critical",
        "Avoid eval()",
        "`eval` executes arbitrary code; parse the input explicitly (e.g. `ast.literal_eval`, `json.loads`).",
    ),
    _Rule(
        re.compile(r"^\s*\w*(password|secret|api_key|token)\w*\s*=\s*['\"][^'\"]+['\"]", re.IGNORECASE),
        "critical",
        "Hard-coded secret",
        "Credentials must not live in the repository; read them from the environment or a secret store.",
        _secret_fix,
    ),
    _Rule(
        re.compile(r"^\s*except\s*:"),
        "minor",
        "Bare except",
        "A bare `except:` also catches `KeyboardInterrupt` and `SystemExit`; catch `Exception` at most.",
        lambda line: line.replace("except:", "except Exception:", 1),
    ),
    _Rule(
        re.compile(r"^\s*print\("),
        "info",
        "Debug output",
        "`print` output is lost in services; use the logging module.",
    ),
    _Rule(re.compile(r"\bTODO\b"), "info", "Unresolved TODO", "Track this TODO in an issue or resolve it."),
)


def review_findings(prompt: str) -> list[dict[str, object]]:
    findings: list[dict[str, object]] = []
    for added in added_lines(prompt):
        for rule in _RULES:
            if rule.pattern.search(added.text):
                finding: dict[str, object] = {
                    "file": added.path,
                    "line": added.line,
                    "side": "new",
                    "severity": rule.severity,
                    "title": rule.title,
                    "body": rule.body,
                }
                if rule.fix is not None:
                    finding["suggestion"] = rule.fix(added.text)
                findings.append(finding)
                break  # one finding per line: the most severe rule listed first
    return findings[:MAX_FINDINGS]


def _task_text(request: ChatRequest) -> str:
    return _DATETIME.sub("", request.prompt).strip()


def _called(request: ChatRequest, tool: str) -> bool:
    return any(r.name == tool for r in request.tool_results)


class DemoBrain:
    def __call__(self, request: ChatRequest) -> Reply:
        if request.offers("reviewer-finish_review"):
            return self._review(request)
        if request.offers("discussion-reply"):
            return self._discussion(request)
        if request.offers("implementer-report_implementation"):
            return self._implement(request)
        return Reply.text("I am the demo model; I only know how to review, discuss and implement.")

    def _review(self, request: ChatRequest) -> Reply:
        if _called(request, "reviewer-finish_review"):
            return Reply.text("Review complete.")
        findings = review_findings(request.prompt)
        if findings and not _called(request, "reviewer-report_finding"):
            return Reply(tool_calls=tuple(ToolCall("reviewer-report_finding", f) for f in findings))
        files = sorted({str(f["file"]) for f in findings})
        summary = (
            f"Found {len(findings)} issue(s) in {', '.join(files)}."
            if findings
            else "No issues found in the changed lines."
        )
        return Reply.call("reviewer-finish_review", summary=summary)

    def _discussion(self, request: ChatRequest) -> Reply:
        if _called(request, "discussion-reply"):
            return Reply.text("Replied.")
        paragraphs = [p.strip() for p in _task_text(request).split("\n\n") if p.strip()]
        question = (paragraphs[-1] if paragraphs else "your question")[:300]
        quoted = "\n".join(f"> {line}" for line in question.splitlines())
        body = (
            f"{quoted}\n\nThanks for asking. This is the demo model: it answers every question the same way."
        )
        return Reply.call("discussion-reply", body=body)

    def _implement(self, request: ChatRequest) -> Reply:
        task = _task_text(request)
        path = _target_file(task)
        if _called(request, "implementer-report_implementation"):
            return Reply.text(f"Implemented: created {path}.")
        parent = str(PurePosixPath(path).parent)
        if parent != "." and not _called(request, "bash"):  # the create tool needs the directory
            return Reply.call(
                "bash", command=f"mkdir -p {shlex.quote(parent)}", description="make the directory"
            )
        created = [r for r in request.tool_results if r.name == "create"]
        if not created:
            first_line = next((line for line in task.splitlines() if line.strip()), "the task")[:200]
            text = f"# Notes\n\nCreated by the demo model for: {first_line}\n"
            return Reply.call("create", path=path, file_text=text)
        ok = created[-1].content.startswith("Created file")
        return Reply.call(
            "implementer-report_implementation",
            summary=f"Created `{path}` as requested."
            if ok
            else f"Could not create `{path}`: {created[-1].content}",
            commit_summary=f"docs: add {path}"[:120],
            test_command=None,
        )


def _target_file(task: str) -> str:
    """The file the task names ("create a file `docs/x.md`"), or NOTES.md; never outside the clone."""
    match = _FILE_NAMED.search(task)
    if match:
        candidate = PurePosixPath(match.group(1))
        if not candidate.is_absolute() and ".." not in candidate.parts and candidate.name:
            return str(candidate)
    return "NOTES.md"


_EARLIER = re.compile(r"thread_id `([^`]+)` at [^\n]*?<untrusted source=\"earlier_finding\">\n([^\n]*)")


class LedgerReviewer:
    """An instant scripted reviewer for the finding-ledger tests, as models behave across pushes.

    - `rules`: stripped text of an added line -> (title, severity, category): reported on every
      added line of the diff in the prompt that matches exactly (the first review sees the whole
      MR, later ones the new commits);
    - `extra`: findings reported as given on the next review only (a model repeating or rewording
      itself, or commenting on lines the commits did not touch);
    - `verdicts`: title of an earlier thread -> (status, reply), given for every earlier thread the
      prompt lists, on the next review only;
    - every reply reports `usage` (USAGE tokens), so token figures can be counted by hand: `calls`
      counts the replies given to review requests.
    """

    USAGE = Usage(prompt_tokens=1000, completion_tokens=100)

    def __init__(self, rules: dict[str, tuple[str, str, str]]) -> None:
        self.rules = rules
        self.extra: list[dict[str, object]] = []
        self.verdicts: dict[str, tuple[str, str]] = {}
        self.prompts: list[str] = []
        self.calls = 0

    def __call__(self, request: ChatRequest) -> Reply:
        if not request.offers("reviewer-finish_review"):
            return Reply.text("I only review.")
        self.calls += 1
        if _called(request, "reviewer-finish_review"):
            return Reply(content="Review complete.", usage=self.USAGE)
        if request.turn == 0:
            self.prompts.append(request.prompt)
            calls = [ToolCall("reviewer-report_finding", f) for f in self._findings(request.prompt)]
            for thread_id, title in _EARLIER.findall(request.prompt):
                if title in self.verdicts:
                    status, reply = self.verdicts[title]
                    calls.append(
                        ToolCall(
                            "reviewer-report_resolution",
                            {"thread_id": thread_id, "status": status, "reply": reply},
                        )
                    )
            self.extra, self.verdicts = [], {}
            # Everything in one turn, the finish included: two model calls per review, not three.
            calls.append(ToolCall("reviewer-finish_review", {"summary": "Reviewed."}))
            return Reply(tool_calls=tuple(calls), usage=self.USAGE)
        return Reply(content="Review complete.", usage=self.USAGE)

    def _findings(self, prompt: str) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        for added in added_lines(prompt):
            rule = self.rules.get(added.text.strip())
            if rule is not None:
                title, severity, category = rule
                found.append(
                    {"file": added.path, "line": added.line, "severity": severity, "category": category,
                     "title": title, "body": "Because."}
                )  # fmt: skip
        return found + [{"body": "Because.", "category": "other", **f} for f in self.extra]
