"""What the API's webhook intake does per delivery that the minimal handler does not, step by step.

bench/bench_webhook_intake.py measures the whole delivery (the API against bench/baseline_intake.py);
this times, in one process and without a server, the pieces of Python work on the API's path that the
baseline skips, beside the baseline's own parse-and-encode of the same delivery, so a gap in the
server CPU per delivery can be traced to (or acquitted of) each of them. Prints microseconds per
delivery (best of `--repeat` rounds of `--count`).

    .venv/bin/python bench/bench_intake_parts.py [--count 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.common.v1 import SearchAttributes  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.converter import encode_search_attributes  # noqa: E402

from api.events import MergeRequestHook  # noqa: E402
from api.starter import _text_payload, run_summary  # noqa: E402
from api.webhook import _too_deep_or_too_big  # noqa: E402
from bench.bench_webhook_intake import hook, sha  # noqa: E402
from contracts import temporal  # noqa: E402
from contracts.ids import review_id  # noqa: E402
from contracts.models import ReviewMRInput, Trigger  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    head = sha()
    raw = json.dumps(hook(5, 12, head)).encode()
    payload = json.loads(raw)
    converter = pydantic_data_converter.payload_converter
    workflow_id = review_id(5, 12, head, once=False)
    attributes = temporal.review_search_attributes(5, 12, head, Trigger.WEBHOOK.value)
    arg = ReviewMRInput(project_id=5, mr_iid=12, head_sha=head, trigger=Trigger.WEBHOOK)

    def baseline() -> None:  # what bench/baseline_intake.py does in Python before the start call
        body = json.loads(raw)
        attrs = body["object_attributes"]
        converter.to_payloads(
            [
                {
                    "project_id": body["project"]["id"],
                    "mr_iid": attrs["iid"],
                    "head_sha": attrs["last_commit"]["id"],
                }
            ]
        )

    def summary() -> None:
        text, details = run_summary("ReviewMR", workflow_id, attributes)
        _text_payload(text), _text_payload(details)

    parts = {
        "baseline: parse the body, encode the start argument": baseline,
        "API: body depth and integer check": lambda: _too_deep_or_too_big(payload),
        "API: MergeRequestHook validation": lambda: MergeRequestHook.model_validate(payload),
        "API: typed start argument (ReviewMRInput) encoded": lambda: converter.to_payloads([arg]),
        "API: search attributes built": lambda: temporal.review_search_attributes(5, 12, head, "webhook"),
        "API: search attributes encoded by the SDK": lambda: encode_search_attributes(
            attributes, SearchAttributes()
        ),
        "API: run summary and details": summary,
    }
    print(f"microseconds per delivery (best of {args.repeat} x {args.count}), {len(raw)}-byte body:")
    extra = 0.0
    for name, step in parts.items():
        best = min(timeit.repeat(step, number=args.count, repeat=args.repeat)) / args.count * 1e6
        if name.startswith("API"):
            extra += best
        print(f"  {best:7.1f}  {name}")
    print(f"  {extra:7.1f}  API steps above, together (the baseline does none of them)")


if __name__ == "__main__":
    main()
