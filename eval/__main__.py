"""python -m eval run | import-aacr | import-martian (see eval/README in the project README, "Evaluation")."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from eval import importers
from eval.brain import PlantedBrain, sidecar
from eval.corpus import CorpusError, load_corpus
from eval.harness import ModelEndpoint, replay
from eval.report import as_json, table
from eval.scoring import DEFAULT_TOLERANCE, DEFAULT_WINDOW, score

DEFAULT_CORPUS = Path(__file__).resolve().parent / "corpus"


def _run(args: argparse.Namespace) -> int:
    try:
        cases = load_corpus(args.corpus)
        if args.only:
            wanted = set(args.only.split(","))
            cases = [c for c in cases if c.id in wanted]
            if not cases:
                raise CorpusError(f"no case of {args.corpus} is named {args.only}")
    except CorpusError as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    endpoint = brain = None
    if args.base_url:
        key = os.environ.get(args.api_key_env) if args.api_key_env else None
        if args.api_key_env and not key:
            print(
                f"eval: {args.api_key_env} is not set (the API key is read from it, never from argv)",
                file=sys.stderr,
            )
            return 2
        endpoint = ModelEndpoint(args.base_url, args.model, args.provider_type, key)
        label = f"{args.provider_type} {args.model} at {args.base_url}"
    with tempfile.TemporaryDirectory(prefix="copilot-eval-sidecar-") as tmp:
        if endpoint is None:
            answers = Path(tmp) / "planted.json"
            try:
                answers.write_text(json.dumps(sidecar(cases)))
            except CorpusError as exc:
                print(f"eval: {exc}", file=sys.stderr)
                return 2
            brain = PlantedBrain(answers)
            label = "scripted model answering the planted findings (self-test)"
        outcomes = asyncio.run(replay(cases, brain=brain, endpoint=endpoint))
    result = score(outcomes, window=args.window, tolerance=args.tolerance)
    print(table(result, outcomes, label=label))
    if args.json:
        settings = {
            "corpus": str(args.corpus),
            "model": label,
            "window": args.window,
            "tolerance": args.tolerance,
            # which prompt overrides the service ran with (the environment's, as in production)
            "prompt_overrides": {
                k: hashlib.sha256(v.encode()).hexdigest()[:12]
                for k, v in sorted(os.environ.items())
                if "SYSTEM_PROMPT" in k
            },
        }
        args.json.write_text(as_json(result, outcomes, settings) + "\n")
        print(f"figures written to {args.json}")
    if brain is not None:  # the self-test: anything but the planted figures is a harness defect
        f = result.figures()
        planted = (f["precision"], f["recall"], f["line_precision"]) == (1.0, 1.0, 1.0) and f[
            "failed_reviews"
        ] == 0
        if not planted or (f["comments_per_clean_mr"] or 0) != 0 or brain.unrecognised:
            print("eval: the self-test did not score as planted", file=sys.stderr)
            return 1
    return 0


def _import(args: argparse.Namespace) -> int:
    convert = importers.import_aacr if args.command == "import-aacr" else importers.import_martian
    try:
        written, skipped = convert(args.data, args.repos, args.out, limit=args.limit)
    except (CorpusError, importers.ImportFailed) as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return 2
    print(f"{len(written)} case(s) written to {args.out}; {len(skipped)} skipped")
    for reason in skipped[:20]:
        print(f"  skipped: {reason}")
    return 0 if written else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="replay a corpus through the service and print the figures")
    run.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    run.add_argument("--only", help="comma-separated case ids")
    run.add_argument(
        "--base-url",
        help="OpenAI-compatible (BYOK) provider, e.g. https://api.openai.com/v1; unset: the planted self-test",
    )
    run.add_argument("--model", default="gpt-4.1", help="model name given to the provider (COPILOT_MODEL)")
    run.add_argument("--provider-type", default="openai", choices=["openai", "azure", "anthropic"])
    run.add_argument("--api-key-env", help="environment variable holding the provider's API key")
    run.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="lines within which a comment matches a finding"
    )
    run.add_argument(
        "--tolerance",
        type=int,
        default=DEFAULT_TOLERANCE,
        help="lines within which a match counts as on its line",
    )
    run.add_argument("--json", type=Path, help="also write the figures and every comment to this file")
    for name in ("import-aacr", "import-martian"):
        imp = sub.add_parser(name, help=f"turn {name.split('-')[1]} benchmark data you fetched into a corpus")
        imp.add_argument("data", type=Path, help="the benchmark's JSON file")
        imp.add_argument(
            "--repos", type=Path, required=True, help="directory of git clones: <repos>/<owner>/<name>"
        )
        imp.add_argument("--out", type=Path, required=True, help="corpus directory to write")
        imp.add_argument("--limit", type=int, default=None)
    args = parser.parse_args(argv)
    return _run(args) if args.command == "run" else _import(args)


if __name__ == "__main__":
    sys.exit(main())
