"""Fixtures of the deployment tests: the chart rendered once per shipped values file, offline."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "gitlab-copilot-agent"
VALUES_FILES = {
    "default": None,
    "local": CHART_DIR / "values-local.yaml",
    "production": CHART_DIR / "values-production.yaml",
}
RELEASE = "agent"
NAMESPACE = "agents"

# A stand-in for the official Temporal chart (never fetched in tests): its frontend Service is named
# the way the real chart names it, and it echoes the values it was given.
STUB_CHART = "apiVersion: v2\nname: temporal\nversion: 1.6.0\nappVersion: 1.31.2\n"
STUB_TEMPLATE = """\
apiVersion: v1
kind: Service
metadata:
  name: {{ printf "%s-temporal" .Release.Name }}-frontend
  annotations:
    stub/connect-addr: {{ .Values.server.config.persistence.datastores.default.sql.connectAddr | quote }}
spec:
  ports:
    - port: 7233
      name: grpc-rpc
"""


def _load_render_module() -> ModuleType:
    path = REPO_ROOT / "helm" / "tools" / "render.py"
    spec = importlib.util.spec_from_file_location("helm_render", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["helm_render"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def render_tool() -> ModuleType:
    return _load_render_module()


@pytest.fixture(scope="session")
def chart_with_stub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart with the stub Temporal chart vendored under charts/."""
    copy = tmp_path_factory.mktemp("chart") / "gitlab-copilot-agent"
    shutil.copytree(CHART_DIR, copy, ignore=shutil.ignore_patterns("charts", "Chart.lock"))
    stub = copy / "charts" / "temporal"
    (stub / "templates").mkdir(parents=True)
    (stub / "Chart.yaml").write_text(STUB_CHART)
    (stub / "templates" / "frontend.yaml").write_text(STUB_TEMPLATE)
    return copy


@pytest.fixture(scope="session")
def values_for(render_tool: ModuleType) -> Callable[[str], dict]:
    def load(variant: str) -> dict:
        path = VALUES_FILES[variant]
        return render_tool.load_values([path] if path else [])

    return load


@pytest.fixture(scope="module", params=sorted(VALUES_FILES))
def rendered(request: pytest.FixtureRequest, render_tool: ModuleType, chart_with_stub: Path, values_for):
    """(variant, manifests) for each shipped values file, rendered with the stub subchart present."""
    variant = request.param
    return variant, render_tool.render(
        chart_with_stub, values_for(variant), name=RELEASE, namespace=NAMESPACE
    )
