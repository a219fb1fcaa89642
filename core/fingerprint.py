"""Finding fingerprints: the deterministic "have we said this before?" check.

The model is told not to repeat itself, but it does; this filter does not rely on it. A fingerprint
combines the file, the finding's normalised words, and the normalised code it points at, so the
same remark about the same code matches even when line numbers moved, while the same remark about
different code does not.
"""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"[a-z0-9_]+")
_STOP = frozenset("a an the this that is are be to of in on for and or it its with should could may".split())


def normalise_text(text: str) -> str:
    words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
    return " ".join(sorted(set(words)))


def normalise_code(code: str) -> str:
    return re.sub(r"\s+", "", code)


def fingerprint(file: str, title: str, code: str) -> str:
    material = "\x1f".join([file.strip().lstrip("./"), normalise_text(title), normalise_code(code)])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def similar(a: str, b: str, threshold: float = 0.6) -> bool:
    """Word-set Jaccard similarity of two normalised texts, for near-duplicate titles."""
    wa, wb = set(a.split()), set(b.split())
    if not wa or not wb:
        return False
    return len(wa & wb) / len(wa | wb) >= threshold
