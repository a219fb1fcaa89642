"""How a container spec becomes a local process: environment, volume paths, command line.

Volume scheme (the agent runner inside a Job relies on it):

* each `emptyDir` volume `<vol>` of a pod is the directory `<pod dir>/vol-<vol>`;
* a container's `volumeMounts[].mountPath` (plus `subPath`, if any) is replaced by that directory
  wherever it appears as a whole path component in `command`, `args`, `workingDir` and `env` values:
  with `mountPath: /work`, `/work/out.txt` becomes `<pod dir>/vol-work/out.txt` but `/workspace` and
  `/a/work` are left alone;
* the process also gets `K8S_STANDIN_MOUNT_<VOL>=<host dir>` for each volume it mounts (`<VOL>` is the
  volume name upper-cased, other characters than A-Z0-9 replaced by `_`) and `K8S_STANDIN_POD_DIR`.

Host paths are not container paths. The stand-in's "image" is this machine's own filesystem, so the
Job names its interpreter, code and caches by their host paths (a checkout may well live under
/tmp, where the pod also mounts a volume). Paths inside the stand-in's `image_paths` (by default this
checkout and the running Python's prefix) are the image's files and are never translated: with a
checkout at /tmp/clone and a mount at /tmp, `/tmp/clone/.venv/bin/python` stays as it is while
`/tmp/out.txt` becomes `<pod dir>/vol-tmp/out.txt`.

Each command runs under `standins/kubernetes/pid1.py`, which kills whatever it leaves running when it
exits, as the end of a real container's PID namespace does.

Paths computed at run time (`os.path.join("/work", x)` inside the program) are *not* translated: a
program should take its directories from arguments or environment, as the agent runner does.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SecretLookup = Callable[[str, str], Mapping[str, bytes] | None]

_VAR_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_PATH_END = re.compile(r"[\s:;,=\"'`)]")


def default_image_paths() -> tuple[str, ...]:
    """This checkout and the running Python's prefix, as given and resolved."""
    checkout = Path(__file__).parents[2]
    paths = {str(checkout), str(checkout.resolve()), sys.prefix, os.path.realpath(sys.prefix)}
    return tuple(sorted(paths))


class ContainerConfigError(Exception):
    """The container cannot be created yet (e.g. a referenced Secret is missing): kubelet's
    CreateContainerConfigError, which clears once the Secret appears."""


def mount_env_name(volume: str) -> str:
    return "K8S_STANDIN_MOUNT_" + re.sub(r"[^A-Za-z0-9]", "_", volume).upper()


class PathMapper:
    """Replaces container mount paths by host directories in one pass (so a replacement is never
    rewritten again, e.g. for a mount at /tmp whose host directory is also under /tmp)."""

    def __init__(self, mounts: Mapping[str, str], image_paths: Iterable[str] = ()) -> None:
        self._mounts = {path.rstrip("/"): host for path, host in mounts.items()}
        self._image = tuple(p.rstrip("/") for p in image_paths if p.rstrip("/"))
        ordered = sorted(self._mounts, key=len, reverse=True)
        self._pattern = (
            re.compile(r"(?<![\w.~/-])(" + "|".join(map(re.escape, ordered)) + r")(?![\w.-])")
            if ordered
            else None
        )

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text

        def replace(match: re.Match[str]) -> str:
            end = _PATH_END.search(text, match.start())
            path = text[match.start() : end.start() if end else len(text)]
            if any(path == image or path.startswith(image + "/") for image in self._image):
                return match.group(0)  # a file of the image (this machine), not of the mount
            return self._mounts[match.group(1)]

        return self._pattern.sub(replace, text)


def expand_references(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes `$(VAR)` expansion: defined variables are substituted, undefined references are
    kept verbatim, `$$` is an escaped `$`."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _VAR_REFERENCE.sub(replace, text)


@dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: str


def _secret_value(namespace: str, ref: Mapping[str, Any], secrets: SecretLookup) -> str | None:
    data = secrets(namespace, ref["name"])
    if data is None:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(f'secret "{ref["name"]}" not found')
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ContainerConfigError(f"couldn't find key {ref['key']} in Secret {namespace}/{ref['name']}")
    return data[ref["key"]].decode("utf-8", errors="replace")


def _container_env(
    container: Mapping[str, Any], pod: Mapping[str, Any], secrets: SecretLookup
) -> dict[str, str]:
    metadata = pod["metadata"]
    namespace = metadata["namespace"]
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        ref = source["secretRef"]
        data = secrets(namespace, ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise ContainerConfigError(f'secret "{ref["name"]}" not found')
        for key, value in data.items():
            env[source.get("prefix", "") + key] = value.decode("utf-8", errors="replace")
    for entry in container.get("env") or []:
        source = entry.get("valueFrom")
        if source is None:
            env[entry["name"]] = expand_references(entry.get("value", ""), env)
        elif "secretKeyRef" in source:
            value = _secret_value(namespace, source["secretKeyRef"], secrets)
            if value is not None:
                env[entry["name"]] = value
        else:
            env[entry["name"]] = str(metadata[source["fieldRef"]["fieldPath"].split(".", 1)[1]])
    return env


def prepare(
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    pod_dir: Path,
    volume_dirs: Mapping[str, Path],
    secrets: SecretLookup,
    base_env: Mapping[str, str],
    image_paths: Iterable[str] = (),
) -> Launch:
    """Resolve a container into argv, environment and working directory on this machine.

    Raises ContainerConfigError when a referenced Secret or key is missing (and not optional).
    """
    mounts: dict[str, str] = {}
    mount_env: dict[str, str] = {}
    for mount in container.get("volumeMounts") or []:
        host = volume_dirs[mount["name"]]
        if mount.get("subPath"):
            host = host / mount["subPath"]
            host.mkdir(parents=True, exist_ok=True)
        mounts[mount["mountPath"]] = str(host)
        mount_env[mount_env_name(mount["name"])] = str(volume_dirs[mount["name"]])
    to_host = PathMapper(mounts, image_paths)
    own_env = _container_env(container, pod, secrets)
    env = {**base_env, "HOSTNAME": pod["metadata"]["name"], "HOME": str(pod_dir / "home")}
    env.update({name: to_host(value) for name, value in own_env.items()})
    env.update(mount_env)
    env["K8S_STANDIN_POD_DIR"] = str(pod_dir)
    argv = [to_host(expand_references(part, own_env)) for part in container["command"]]
    argv += [to_host(expand_references(part, own_env)) for part in container.get("args") or []]
    cwd = to_host(container["workingDir"]) if container.get("workingDir") else str(pod_dir)
    if Path(cwd).is_relative_to(pod_dir):
        # The runtime creates a missing workingDir, as containerd does.
        os.makedirs(cwd, exist_ok=True)
    return Launch(argv, env, cwd)
