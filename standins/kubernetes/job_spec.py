"""Admission for batch/v1 Jobs: the API server's validation plus what the stand-in cannot run.

Everything the stand-in would otherwise have to guess at (an image entrypoint, a volume type it cannot
emulate, parallel pods) is refused with 422 at create time, so a Job that is accepted really runs.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from standins.kubernetes.meta import label_name_errors, subdomain_errors
from standins.kubernetes.status import Cause, bad_request, invalid

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
SUPPORTED_FIELD_REFS = ("metadata.name", "metadata.namespace", "metadata.uid")


class _Checker:
    def __init__(self) -> None:
        self.causes: list[Cause] = []

    def required(self, field: str) -> None:
        self.causes.append(Cause(field, "FieldValueRequired", "Required value"))

    def bad(self, field: str, value: Any, message: str) -> None:
        self.causes.append(Cause(field, "FieldValueInvalid", f"Invalid value: {value!r}: {message}"))

    def unsupported(self, field: str, value: Any, message: str) -> None:
        self.causes.append(Cause(field, "FieldValueNotSupported", f"Unsupported value: {value!r}: {message}"))

    def items(self, field: str, value: Any) -> list[Any]:
        """The list at `field` (absent counts as empty); anything else is a cause and yields nothing."""
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(field, type(value).__name__, "must be a list")
            return []
        return value


def _check_env_source(check: _Checker, path: str, source: Any) -> None:
    if not isinstance(source, dict) or len(source) != 1:
        check.bad(path, source, "must specify exactly one of secretKeyRef, fieldRef")
        return
    kind, ref = next(iter(source.items()))
    if kind == "secretKeyRef":
        if not isinstance(ref, dict) or not ref.get("name") or not ref.get("key"):
            check.required(f"{path}.secretKeyRef.name/key")
    elif kind == "fieldRef":
        field_path = ref.get("fieldPath") if isinstance(ref, dict) else None
        if field_path not in SUPPORTED_FIELD_REFS:
            check.unsupported(f"{path}.fieldRef.fieldPath", field_path, f"supported: {SUPPORTED_FIELD_REFS}")
    else:
        check.unsupported(f"{path}.{kind}", kind, "the stand-in resolves secretKeyRef and fieldRef only")


def _check_container(check: _Checker, path: str, container: Any, volumes: set[str], seen: set[str]) -> None:
    if not isinstance(container, dict):
        check.bad(path, container, "must be an object")
        return
    name = container.get("name")
    if not isinstance(name, str) or not name:
        check.required(f"{path}.name")
    else:
        for message in label_name_errors(name):
            check.bad(f"{path}.name", name, message)
        if name in seen:
            check.causes.append(Cause(f"{path}.name", "FieldValueDuplicate", f"Duplicate value: {name!r}"))
        seen.add(name)
    if not isinstance(container.get("image"), str) or not container["image"]:
        check.required(f"{path}.image")
    command = container.get("command")
    if not isinstance(command, list) or not command or not all(isinstance(a, str) for a in command):
        # No image is pulled, so there is no entrypoint to fall back on.
        check.required(f"{path}.command (the stand-in has no image entrypoint to fall back on)")
    args = container.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        check.bad(f"{path}.args", args, "must be a list of strings")
    working_dir = container.get("workingDir")
    if working_dir is not None and not (isinstance(working_dir, str) and working_dir.startswith("/")):
        check.bad(f"{path}.workingDir", working_dir, "must be an absolute path")
    for i, env in enumerate(check.items(f"{path}.env", container.get("env"))):
        env_path = f"{path}.env[{i}]"
        env_name = env.get("name") if isinstance(env, dict) else None
        if not isinstance(env_name, str) or not _ENV_NAME.match(env_name):
            check.bad(f"{env_path}.name", env_name, "a valid environment variable name is required")
            continue
        if "valueFrom" in env:
            if "value" in env:
                check.bad(env_path, env_name, "may not have both value and valueFrom")
            _check_env_source(check, f"{env_path}.valueFrom", env["valueFrom"])
        elif not isinstance(env.get("value", ""), str):
            check.bad(f"{env_path}.value", env.get("value"), "must be a string")
    for i, source in enumerate(check.items(f"{path}.envFrom", container.get("envFrom"))):
        if not isinstance(source, dict) or set(source) - {"secretRef", "prefix"} or "secretRef" not in source:
            check.unsupported(f"{path}.envFrom[{i}]", source, "the stand-in supports envFrom.secretRef only")
    for i, mount in enumerate(check.items(f"{path}.volumeMounts", container.get("volumeMounts"))):
        mount_path = mount.get("mountPath") if isinstance(mount, dict) else None
        if not isinstance(mount, dict) or mount.get("name") not in volumes:
            check.causes.append(
                Cause(f"{path}.volumeMounts[{i}].name", "FieldValueNotFound", "Not found: volume not defined")
            )
        if not isinstance(mount_path, str) or not mount_path.startswith("/") or mount_path == "/":
            check.bad(f"{path}.volumeMounts[{i}].mountPath", mount_path, "must be an absolute path below /")
        sub_path = mount.get("subPath", "") if isinstance(mount, dict) else ""
        if not isinstance(sub_path, str) or sub_path.startswith("/") or ".." in sub_path.split("/"):
            check.bad(f"{path}.volumeMounts[{i}].subPath", sub_path, "must be a relative path without '..'")


def _check_pod_spec(check: _Checker, spec: Any) -> None:
    path = "spec.template.spec"
    if not isinstance(spec, dict):
        check.required(path)
        return
    volumes: set[str] = set()
    for i, volume in enumerate(check.items(f"{path}.volumes", spec.get("volumes"))):
        name = volume.get("name") if isinstance(volume, dict) else None
        if not isinstance(name, str) or label_name_errors(name):
            check.bad(f"{path}.volumes[{i}].name", name, "must be a DNS-1123 label")
            continue
        if set(volume) != {"name", "emptyDir"}:
            check.unsupported(f"{path}.volumes[{i}]", name, "the stand-in supports emptyDir volumes only")
        volumes.add(name)
    restart_policy = spec.get("restartPolicy", "Always")
    if restart_policy != "Never":
        # The API server also accepts OnFailure; the stand-in does not restart containers in place.
        check.unsupported(f"{path}.restartPolicy", restart_policy, 'supported values: "Never"')
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        check.required(f"{path}.containers")
        containers = []
    init_containers = check.items(f"{path}.initContainers", spec.get("initContainers"))
    seen: set[str] = set()
    for i, container in enumerate(init_containers):
        _check_container(check, f"{path}.initContainers[{i}]", container, volumes, seen)
    for i, container in enumerate(containers):
        _check_container(check, f"{path}.containers[{i}]", container, volumes, seen)


def _check_counts(check: _Checker, spec: dict[str, Any]) -> None:
    for field in ("completions", "parallelism"):
        if spec.get(field, 1) != 1:
            check.unsupported(f"spec.{field}", spec[field], "the stand-in runs exactly one pod per Job")
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished"):
        value = spec.get(field)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            check.bad(f"spec.{field}", value, "must be a non-negative integer")
    if spec.get("activeDeadlineSeconds") == 0:
        check.bad("spec.activeDeadlineSeconds", 0, "must be greater than 0")
    if spec.get("suspend"):
        check.unsupported("spec.suspend", True, "the stand-in does not suspend Jobs")


def admit_job(namespace: str, body: Any) -> dict[str, Any]:
    """Validate a Job body and return a copy with the defaults the API server would fill in.

    Raises `ApiError` 400 for a body that is not a batch/v1 Job object and 422 Invalid (with one
    `cause` per offending field) for a Job the API server or the stand-in would refuse.
    """
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    if body.get("kind", "Job") != "Job" or body.get("apiVersion", "batch/v1") != "batch/v1":
        raise bad_request(
            f"expected kind Job in batch/v1, got {body.get('kind')} in {body.get('apiVersion')}"
        )
    job = copy.deepcopy(body)
    metadata = job.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    if metadata.get("namespace", namespace) != namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    check = _Checker()
    name = metadata.get("name") or metadata.get("generateName") or ""
    if not isinstance(name, str) or not name:
        check.required("metadata.name")
    else:
        # generateName gets five more characters; checking the prefix alone would let 60+ through.
        candidate = name if metadata.get("name") else name + "xxxxx"
        for message in subdomain_errors(candidate, max_length=63):
            check.bad("metadata.name", name, message)
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        check.bad("metadata.labels", labels, "must be an object")
        labels = {}
    for key, value in labels.items():
        if not isinstance(value, str) or len(value) > 63:
            check.bad(f"metadata.labels[{key}]", value, "must be a string of at most 63 characters")
    spec = job.get("spec")
    if not isinstance(spec, dict):
        check.required("spec")
        spec = {}
    template = spec.get("template")
    if not isinstance(template, dict):
        check.required("spec.template")
        template = {}
    if not isinstance(template.get("metadata", {}), dict):
        check.bad("spec.template.metadata", template["metadata"], "must be an object")
    _check_counts(check, spec)
    _check_pod_spec(check, template.get("spec"))
    if check.causes:
        raise invalid("Job", "batch", name if isinstance(name, str) else "", check.causes)
    job["apiVersion"], job["kind"] = "batch/v1", "Job"
    metadata["namespace"] = namespace
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    return job
