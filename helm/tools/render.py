"""Offline `helm lint` / `helm template` for the chart, through the Helm SDK in `helm-python-sdk`.

No helm binary is needed and nothing is fetched (the chart has no dependencies). It runs wherever the
SDK's wheels do (arm64 too), in process; tests/deploy/test_helm.py runs the real helm v3 and v4.

    python helm/tools/render.py lint helm/gitlab-copilot-agent -f helm/gitlab-copilot-agent/values-local.yaml
    python helm/tools/render.py template helm/gitlab-copilot-agent --name demo --namespace agents

Input handling: a chart path without Chart.yaml, a values file that is missing, larger than
MAX_VALUES_BYTES, not UTF-8 YAML or not a mapping, a `--set` expression Helm cannot parse, an invalid
release name, or values the chart's schema rejects all end in one line on stderr and exit status 2;
nothing is rendered. Lint findings of severity error give exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import yaml

MAX_VALUES_BYTES = 1024 * 1024
SEVERITY_NAMES = {0: "UNKNOWN", 1: "INFO", 2: "WARNING", 3: "ERROR"}
ERROR_SEVERITY = 3


class InputError(Exception):
    """Bad values input: reported as one line and exit status 2."""


@dataclass(frozen=True)
class LintMessage:
    severity: int
    path: str
    error: str

    @property
    def is_error(self) -> bool:
        return self.severity >= ERROR_SEVERITY

    def __str__(self) -> str:
        return f"[{SEVERITY_NAMES.get(self.severity, self.severity)}] {self.path}: {self.error}"


@dataclass(frozen=True)
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    source: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", ""))


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of several `-f` files: maps merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_values_file(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"{path}: cannot read values file ({exc.strerror})") from None
    if size > MAX_VALUES_BYTES:
        raise InputError(f"{path}: values file is {size} bytes, more than the {MAX_VALUES_BYTES} allowed")
    try:
        # Helm's own parser: a document that is not a mapping (a list, a scalar) is refused here too.
        return helm_python.values_from_yaml(path.read_text(encoding="utf-8"))
    except (helm_python.HelmError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid YAML values mapping ({exc})") from None


def load_values(files: list[Path], sets: list[str] | None = None) -> dict[str, Any]:
    """Values of `-f` files then `--set` expressions, later ones winning, as `helm` does."""
    values: dict[str, Any] = {}
    for path in files:
        values = deep_merge(values, read_values_file(path))
    for expression in sets or []:
        try:
            values = deep_merge(values, helm_python.parse_set_string(expression))
        except helm_python.HelmError as exc:
            raise InputError(f"--set {expression!r}: {exc}") from None
    return values


def require_chart(chart_dir: Path) -> None:
    # The SDK's lint reports a missing chart as zero findings, which would read as a clean chart.
    if not (chart_dir / "Chart.yaml").is_file():
        raise InputError(f"{chart_dir}: not a chart directory (no Chart.yaml)")


def lint(chart_dir: Path, values: dict[str, Any], *, namespace: str = "default") -> list[LintMessage]:
    require_chart(chart_dir)
    report = helm_python.lint(chart_dir, values, namespace=namespace)
    return [
        LintMessage(int(m["severity"]), m.get("path", ""), m.get("error", "")) for m in report["messages"]
    ]


def render(
    chart_dir: Path, values: dict[str, Any], *, name: str = "release", namespace: str = "default"
) -> list[Manifest]:
    """Every object the chart renders, after validating the values against the chart's schema."""
    require_chart(chart_dir)
    helm_python.validate_release_name(name)
    with helm_python.Chart.load(chart_dir) as chart:
        try:
            chart.validate_schema(values)
        except helm_python.HelmValuesError as exc:
            raise InputError(f"values rejected by {chart_dir}/values.schema.json: {exc}") from None
        rendered = chart.render(values, name=name, namespace=namespace, is_install=True)
    manifests = []
    for source in sorted(rendered):
        if not source.endswith((".yaml", ".yml")):
            continue  # NOTES.txt and helpers
        for body in yaml.safe_load_all(rendered[source]):
            if body:
                manifests.append(Manifest(source, body))
    return manifests


def to_yaml(manifests: list[Manifest]) -> str:
    return "".join(f"---\n# Source: {m.source}\n{yaml.safe_dump(m.body, sort_keys=False)}" for m in manifests)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("lint", "template"):
        p = sub.add_parser(command)
        p.add_argument("chart", type=Path)
        p.add_argument("-f", "--values", type=Path, action="append", default=[])
        p.add_argument("--set", action="append", default=[])
        p.add_argument("--namespace", default="default")
        if command == "template":
            p.add_argument("--name", default="release")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        values = load_values(args.values, args.set)
        if args.command == "lint":
            messages = lint(args.chart, values, namespace=args.namespace)
            for message in messages:
                print(message)
            errors = sum(m.is_error for m in messages)
            print(f"{args.chart}: {len(messages)} message(s), {errors} error(s)")
            return 1 if errors else 0
        sys.stdout.write(to_yaml(render(args.chart, values, name=args.name, namespace=args.namespace)))
        return 0
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except helm_python.HelmError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
