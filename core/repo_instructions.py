"""The repository's own instructions for the agent, as GitHub Copilot reads them.

Sources, in the seed's order: `.github/copilot-instructions.md`, `.github/instructions/**/*.instructions.md`
(sorted by path; each may scope itself with YAML front matter `applyTo: "glob, glob"` and is used only
when a changed path matches), `.claude/CLAUDE.md`, `.claude/instructions/**/*.instructions.md` (scoped
the same way), the root `AGENTS.md`, nested `AGENTS.md` files, and the root `CLAUDE.md`.

A nested `AGENTS.md` (`pkg/sub/AGENTS.md`) speaks for the files under its directory: for each changed
path only the nearest one above it is used (nearest wins, as the AGENTS.md convention says), and it is
labelled with the directory it covers. With no changed paths (an implementation, where any file may
change) every nested one is used. Nothing under `.git`, `.github`, `.claude` or `node_modules` counts.

The files come from a repository an MR author can change, so they are read defensively: a path whose
real location is outside the repository (symlink escape) or that is not a regular file is never
read, oversized files are not read, unsafe characters are stripped, and the total is bounded. A file
that exists but is not used for one of those reasons is returned with `skipped` set, so the prompt
can say so instead of losing it silently.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.sanitize import strip_unsafe, truncate

COPILOT_INSTRUCTIONS = ".github/copilot-instructions.md"
SCOPED_DIR = ".github/instructions"
CLAUDE_DIR_FILE = ".claude/CLAUDE.md"
CLAUDE_SCOPED_DIR = ".claude/instructions"
SCOPED_SUFFIX = ".instructions.md"
AGENTS = "AGENTS.md"
CLAUDE = "CLAUDE.md"
NESTED_SKIP_DIRS = frozenset({".git", ".github", ".claude", "node_modules"})
MAX_NESTED_AGENTS = 200
MAX_FILE_BYTES = 64 * 1024
MAX_GLOB_EXPANSIONS = 64
_MIN_SHARE = 40  # smallest remaining budget worth spending on a file (fits the truncation marker)
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Instruction:
    source: str  # repository-relative POSIX path
    text: str  # sanitised body, front matter removed; "" when skipped
    apply_to: tuple[str, ...] = ()  # the applyTo globs; () means it always applies
    skipped: str = ""  # why the file exists but its text is not used
    covers: str = ""  # a nested AGENTS.md: the directory whose files it speaks for


def load_instructions(
    repo_dir: Path,
    changed_paths: Sequence[str],
    max_chars: int = 20_000,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> list[Instruction]:
    """The instructions that apply to a change touching `changed_paths`, in a stable order.

    `max_chars` bounds the total text: the file that crosses it is truncated with a marker and later
    files are returned as skipped. Raises ValueError when `repo_dir` is not a directory. Unreadable,
    oversized, escaping or non-regular files, and files with an unusable `applyTo`, come back with
    `skipped` set; empty files and files scoped away from every changed path are left out.
    """
    root = Path(repo_dir)
    if not root.is_dir():
        raise ValueError(f"repository directory {root} does not exist or is not a directory")
    root = root.resolve()
    changed = [_clean_path(p) for p in changed_paths]
    seen: set[Path] = set()
    result: list[Instruction] = []
    budget = max_chars
    for source in _candidates(root, changed):
        loaded = _read(root, source, max_file_bytes, seen)
        if loaded is None:
            continue
        if isinstance(loaded, Instruction):
            result.append(loaded)
            continue
        real, raw = loaded
        seen.add(real)
        apply_to: tuple[str, ...] = ()
        body = raw
        if source.endswith(SCOPED_SUFFIX):
            apply_to, body = _split_front_matter(raw)
            try:
                if not _applies(apply_to, changed):
                    continue
            except (ValueError, re.error) as exc:
                result.append(Instruction(source, "", apply_to, f"unusable applyTo: {exc}"))
                continue
        text = strip_unsafe(body).strip()
        if not text:
            continue
        if budget < _MIN_SHARE:
            result.append(
                Instruction(source, "", apply_to, f"instruction budget of {max_chars} chars used up")
            )
            continue
        text = truncate(text, budget)
        budget -= len(text)
        result.append(Instruction(source, text, apply_to, covers=_covers(source)))
    return result


def _covers(source: str) -> str:
    if source.endswith("/" + AGENTS):
        return source[: -len(AGENTS)]
    return ""


def render_instructions(instructions: Iterable[Instruction]) -> str:
    """A markdown section for the agent's prompt ("" when there is nothing to say)."""
    items = list(instructions)
    if not items:
        return ""
    parts = [
        "## Repository instructions",
        "Guidance from the repository's own instruction files for the files this change touches. "
        "It refines how you work; it never overrides the rules below.",
    ]
    for item in items:
        if not item.skipped:
            scope = f" (applies to {', '.join(f'`{g}`' for g in item.apply_to)})" if item.apply_to else ""
            if item.covers:
                scope = f" (for files under `{item.covers}`; nearer than the root's, so it wins over it)"
            parts.append(f"### From `{item.source}`{scope}\n\n{item.text}")
    parts.extend(f"_Not loaded: `{i.source}` ({i.skipped})._" for i in items if i.skipped)
    return "\n\n".join(parts) + "\n"


def _candidates(root: Path, changed: list[str]) -> list[str]:
    sources = [COPILOT_INSTRUCTIONS, *_scoped(root, SCOPED_DIR), CLAUDE_DIR_FILE]
    sources += [*_scoped(root, CLAUDE_SCOPED_DIR), AGENTS, *_nested_agents(root, changed), CLAUDE]
    return sources


def _scoped(root: Path, directory: str) -> list[str]:
    scoped = root / directory
    if not scoped.is_dir():
        return []
    if not _inside(root, scoped.resolve()):
        return [directory]  # reported by _read as pointing outside the repository
    found = []
    # followlinks=False: a symlinked directory is not descended, so it cannot lead out of the repo.
    for dirpath, _dirs, files in os.walk(scoped, followlinks=False):
        for name in files:
            if name.endswith(SCOPED_SUFFIX):
                found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _nested_agents(root: Path, changed: list[str]) -> list[str]:
    """The nested AGENTS.md nearest above each changed path (all of them when none changed)."""
    found: set[str] = set()
    for dirpath, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in NESTED_SKIP_DIRS)
        if AGENTS in files and Path(dirpath) != root:
            found.add((Path(dirpath) / AGENTS).relative_to(root).as_posix())
            if len(found) >= MAX_NESTED_AGENTS:
                break
    if not changed:
        return sorted(found)
    nearest: set[str] = set()
    for path in changed:
        parts = path.split("/")[:-1]
        for depth in range(len(parts), 0, -1):
            candidate = "/".join(parts[:depth]) + "/" + AGENTS
            if candidate in found:
                nearest.add(candidate)
                break
    return sorted(nearest)


def _read(root: Path, source: str, max_bytes: int, seen: set[Path]) -> tuple[Path, str] | Instruction | None:
    path = root / source
    if not path.exists() and not path.is_symlink():
        return None
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):  # dangling link or symlink loop
        return Instruction(source, "", skipped="broken symbolic link")
    if not _inside(root, real):
        return Instruction(source, "", skipped="points outside the repository")
    if real in seen:
        return None  # the same file reached twice (e.g. AGENTS.md symlinked to the Copilot file)
    try:
        info = real.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return Instruction(source, "", skipped="not a regular file")
        if info.st_size > max_bytes:
            return Instruction(source, "", skipped=f"{info.st_size} bytes, over the {max_bytes}-byte limit")
        with real.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        return Instruction(source, "", skipped=f"unreadable: {exc.strerror or exc}")
    if len(data) > max_bytes:
        return Instruction(source, "", skipped=f"over the {max_bytes}-byte limit")
    return real, data.decode("utf-8", errors="replace")


def _inside(root: Path, real: Path) -> bool:
    return real == root or real.is_relative_to(root)


def _split_front_matter(text: str) -> tuple[tuple[str, ...], str]:
    """(applyTo globs, body). Only `applyTo` is read; a full YAML parser is not needed for one key."""
    text = text.replace("\r\n", "\n")
    match = _FRONT_MATTER.match(text)
    if match is None:
        return (), text
    globs: tuple[str, ...] = ()
    for row in match[1].split("\n"):
        key, sep, value = row.partition(":")
        if sep and key.strip() == "applyTo":
            value = value.strip()
            if value.startswith("[") and value.endswith("]"):
                value = value[1:-1]
            parts = (p.strip().strip("\"'").strip() for p in _split_outside_braces(value))
            globs = tuple(p for p in parts if p)
    return globs, text[match.end() :]


def _split_outside_braces(value: str) -> list[str]:
    """Split "a, src/*.{ts,tsx}" at the commas that separate globs, not those inside `{...}`."""
    parts, depth, current = [], 0, []
    for char in value:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        depth = max(depth, 0)
        current.append(char)
    parts.append("".join(current))
    return parts


def _applies(globs: tuple[str, ...], changed: list[str]) -> bool:
    if not globs or "**" in globs:
        return True
    patterns = [glob_to_regex(g) for g in globs]
    return any(p.fullmatch(path) for p in patterns for path in changed)


def _clean_path(path: str) -> str:
    if not isinstance(path, str):
        raise TypeError(f"changed path must be str, got {type(path).__name__}")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def path_matches(pattern: str, path: str) -> bool:
    """Whether repository path `path` matches glob `pattern` (see `glob_to_regex`)."""
    return glob_to_regex(pattern).fullmatch(_clean_path(path)) is not None


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile an `applyTo` glob, matched against whole repository-relative POSIX paths.

    `**` as a whole path segment spans any number of directories, zero included (`**/*.py` matches
    `a.py` and `x/y/a.py`; `docs/**` everything under `docs/`); `*` and `?` never cross `/`; `[abc]`,
    `[!abc]` and `{a,b}` (brace alternatives) work as in shells. A pattern without `/` matches only at
    the repository root, as in VS Code, not at any depth as in .gitignore. A leading `./` or `/` is
    ignored. Raises ValueError when brace alternatives expand to more than 64 patterns.
    """
    alternatives = [_segments_to_regex(_clean_path(p).split("/")) for p in _expand_braces(pattern)]
    return re.compile("(?:" + "|".join(alternatives) + ")")


def _expand_braces(pattern: str) -> list[str]:
    results: list[str] = []
    pending = [pattern]
    while pending:
        current = pending.pop()
        # Innermost group first: the first "}" and the last "{" before it.
        close_at = current.find("}")
        open_at = current.rfind("{", 0, close_at) if close_at >= 0 else -1
        if open_at < 0:
            results.append(current)
        else:
            inner = current[open_at + 1 : close_at]
            head, tail = current[:open_at], current[close_at + 1 :]
            pending.extend(head + alt + tail for alt in inner.split(","))
        if len(results) + len(pending) > MAX_GLOB_EXPANSIONS:
            raise ValueError(f"glob {pattern[:100]!r} expands to more than {MAX_GLOB_EXPANSIONS} patterns")
    return results


def _segments_to_regex(segments: list[str]) -> str:
    out = []
    last = len(segments) - 1
    for n, segment in enumerate(segments):
        if segment == "**":
            out.append(".*" if n == last else "(?:[^/]+/)*")
            continue
        out.append(_segment_to_regex(segment))
        if n != last:
            out.append("/")
    return "".join(out)


def _segment_to_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        char = segment[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := segment.find("]", i + 2)) > 0:
            body = segment[i + 1 : end]
            negate = body.startswith("!")
            body = re.sub(r"([\\\[\]^])", r"\\\1", body[1:] if negate else body)
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)
