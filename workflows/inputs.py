"""Start inputs are validated inside the workflow, so a bad one fails the run at once, with the reason.

Why not typed `run(self, data: ReviewMRInput)`: the SDK decodes a typed argument before any workflow
code runs, and a decoding error fails the *workflow task*, not the run. The run then stays RUNNING
while the task fails over and over ("Failed decoding arguments ... Extra inputs are not permitted"),
which is what an operator sees after a typo in `temporal workflow start --input '...'`.

So every workflow's run takes `*inputs: Any` (the SDK then decodes plain JSON, which cannot fail for
any JSON the CLI or the UI accepts) and calls `start_input(Model, inputs)` first: a wrong field name,
a wrong type, a missing field, a second `--input` or a non-object raise a non-retryable
ApplicationError of type `InvalidWorkflowInput`. The run ends FAILED; the Web UI shows the message
(`ReviewMR input: bogus: Extra inputs are not permitted; mr_iid: Field required`) and the details
list each field with its reason. A converter-level check would also catch activity payloads and
results, which are code contracts (a mismatch there is a bug a deployment fixes, so the task retry is
right), so the check is here and for start inputs only. See docs/adr (manual starts fail the run).
"""

from __future__ import annotations

import functools
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from temporalio import workflow
from temporalio.exceptions import ApplicationError

INVALID_INPUT = "InvalidWorkflowInput"
MAX_SHOWN_INPUT = 60
T = TypeVar("T")


class NoInput(BaseModel):
    """The input of workflows that need none (pollers, Diagnose): nothing, `{}` or `null`."""

    model_config = ConfigDict(extra="forbid")


@functools.cache
def _adapter(kind: type) -> TypeAdapter:
    return TypeAdapter(kind)


def input_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Each problem as {field, reason}, the field dotted (`position.new_line`), never a secret: the
    input is in the run's history and the Web UI already."""
    problems = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "(input)"
        reason = error["msg"]
        if error["type"] not in {"missing", "extra_forbidden"}:
            shown = json.dumps(error.get("input"), default=str)
            reason += f" (got {shown[:MAX_SHOWN_INPUT]}{'...' if len(shown) > MAX_SHOWN_INPUT else ''})"
        problems.append({"field": field, "reason": reason})
    return problems


def _invalid(workflow_type: str, problems: list[dict[str, str]]) -> ApplicationError:
    summary = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
    return ApplicationError(
        f"{workflow_type} input: {summary}", {"errors": problems}, type=INVALID_INPUT, non_retryable=True
    )


def start_input(kind: type[T], inputs: tuple[Any, ...]) -> T:
    """The run's one start input as `kind` (a pydantic model or a dataclass); no input or `null` is
    an empty object (so a model with required fields names each one as missing)."""
    workflow_type = workflow.info().workflow_type
    if len(inputs) > 1:
        problem = {"field": "(input)", "reason": f"expected one JSON object, got {len(inputs)} inputs"}
        raise _invalid(workflow_type, [problem])
    raw = inputs[0] if inputs and inputs[0] is not None else {}
    try:
        return _adapter(kind).validate_python(raw)
    except ValidationError as exc:
        raise _invalid(workflow_type, input_errors(exc)) from None
