"""Object-metadata rules shared by every resource: names, label and field selectors, timestamps."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from standins.kubernetes.status import bad_request

# A Job's name becomes the value of its pods' `job-name` label, so the API server holds it to the
# 63-character label limit even though object names in general may be DNS-1123 subdomains.
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def subdomain_errors(name: str, max_length: int = 253) -> list[str]:
    """The API server's messages for a name that is not a DNS-1123 subdomain (empty when valid)."""
    errors = []
    if len(name) > max_length:
        errors.append(f"must be no more than {max_length} characters")
    if not _DNS1123_SUBDOMAIN.match(name):
        errors.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
            "'.', and must start and end with an alphanumeric character"
        )
    return errors


def label_name_errors(name: str) -> list[str]:
    """Messages for a name that is not a DNS-1123 label (containers, volumes, namespaces)."""
    errors = []
    if len(name) > 63:
        errors.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.match(name):
        errors.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
            "must start and end with an alphanumeric character"
        )
    return errors


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "=":
            return labels.get(self.key) == self.value
        if self.operator == "!=":
            return labels.get(self.key) != self.value
        if self.operator == "exists":
            return self.key in labels
        return self.key not in labels


def _check_key(key: str, selector: str) -> None:
    prefix, _, name = key.rpartition("/")
    if not _LABEL_KEY_NAME.match(name) or len(name) > 63 or (prefix and subdomain_errors(prefix)):
        raise bad_request(f"unable to parse requirement: invalid label key {key!r} in selector {selector!r}")


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Equality-based selectors (`a=b,c==d,e!=f`) plus bare `key` / `!key` existence tests.

    Set-based syntax (`in`, `notin`) is refused with 400 rather than half-parsed, so a caller relying on
    it learns immediately instead of silently matching everything.
    """
    if not selector:
        return []
    if len(selector) > 4096:
        raise bad_request("unable to parse requirement: label selector too long")
    requirements = []
    for raw in selector.split(","):
        term = raw.strip()
        if not term:
            raise bad_request(f"unable to parse requirement: empty term in selector {selector!r}")
        if " in " in term or " notin " in term or "(" in term:
            raise bad_request(f"set-based selector {term!r} is not supported by the stand-in")
        if "!=" in term:
            key, value = (part.strip() for part in term.split("!=", 1))
            operator = "!="
        elif "=" in term:
            key, value = (part.strip() for part in term.replace("==", "=", 1).split("=", 1))
            operator = "="
        elif term.startswith("!"):
            key, value, operator = term[1:].strip(), "", "!exists"
        else:
            key, value, operator = term, "", "exists"
        _check_key(key, selector)
        if not _LABEL_VALUE.match(value) or len(value) > 63:
            raise bad_request(f"unable to parse requirement: invalid label value {value!r}")
        requirements.append(Requirement(key, operator, value))
    return requirements


def parse_field_selector(selector: str | None) -> dict[str, str]:
    """Only `metadata.name` and `metadata.namespace` equality, the fields clients watch one object by."""
    if not selector:
        return {}
    fields: dict[str, str] = {}
    for term in selector.split(","):
        key, sep, value = term.replace("==", "=", 1).partition("=")
        key = key.strip()
        if not sep or key not in ("metadata.name", "metadata.namespace"):
            raise bad_request(f'field label not supported: "{key}"')
        fields[key] = value.strip()
    return fields


def selected(obj: Mapping[str, Any], labels: Sequence[Requirement], fields: Mapping[str, str]) -> bool:
    metadata = obj.get("metadata", {})
    object_labels = metadata.get("labels") or {}
    if not all(requirement.matches(object_labels) for requirement in labels):
        return False
    return all(metadata.get(key.split(".", 1)[1]) == value for key, value in fields.items())
