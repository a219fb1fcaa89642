from __future__ import annotations

import os
from pathlib import Path

import pytest

from core.repo_instructions import (
    Instruction,
    glob_to_regex,
    load_instructions,
    path_matches,
    render_instructions,
)


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    write(root, ".github/copilot-instructions.md", "Use type hints.\n")
    write(
        root, ".github/instructions/python.instructions.md", '---\napplyTo: "**/*.py"\n---\nPrefer pathlib.\n'
    )
    write(
        root,
        ".github/instructions/docs.instructions.md",
        "---\napplyTo: 'docs/**, *.md'\n---\nWrite plainly.\n",
    )
    write(
        root,
        ".github/instructions/all.instructions.md",
        '---\napplyTo: "**"\ndescription: x\n---\nBe kind.\n',
    )
    write(root, ".github/instructions/plain.instructions.md", "No front matter: always.\n")
    write(
        root,
        ".github/instructions/web/ts.instructions.md",
        '---\napplyTo: ["src/**/*.{ts,tsx}"]\n---\nStrict TS.\n',
    )
    write(root, ".github/instructions/empty.instructions.md", "---\napplyTo: '**'\n---\n   \n")
    write(root, "AGENTS.md", "Run make test.\n")
    return root


def sources(items: list[Instruction]) -> list[str]:
    return [i.source for i in items if not i.skipped]


def test_order_and_scoping_for_a_python_change(repo: Path) -> None:
    items = load_instructions(repo, ["app/core/models.py"])
    assert sources(items) == [
        ".github/copilot-instructions.md",
        ".github/instructions/all.instructions.md",
        ".github/instructions/plain.instructions.md",
        ".github/instructions/python.instructions.md",
        "AGENTS.md",
    ]
    python = next(i for i in items if i.source.endswith("python.instructions.md"))
    assert (python.text, python.apply_to) == ("Prefer pathlib.", ("**/*.py",))


def test_scoped_files_follow_the_changed_paths(repo: Path) -> None:
    items = load_instructions(repo, ["./docs/guide/intro.md", "src/ui/app.tsx"])
    assert ".github/instructions/docs.instructions.md" in sources(items)
    assert ".github/instructions/web/ts.instructions.md" in sources(items)
    assert ".github/instructions/python.instructions.md" not in sources(items)


def test_root_only_pattern_does_not_match_nested(repo: Path) -> None:
    assert ".github/instructions/docs.instructions.md" in sources(load_instructions(repo, ["README.md"]))
    assert ".github/instructions/docs.instructions.md" not in sources(
        load_instructions(repo, ["pkg/README.md"])
    )


def test_no_changed_paths_keeps_only_unscoped_files(repo: Path) -> None:
    assert sources(load_instructions(repo, [])) == [
        ".github/copilot-instructions.md",
        ".github/instructions/all.instructions.md",
        ".github/instructions/plain.instructions.md",
        "AGENTS.md",
    ]


def test_missing_files_are_fine(tmp_path: Path) -> None:
    assert load_instructions(tmp_path, ["a.py"]) == []
    assert render_instructions([]) == ""


def test_not_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        load_instructions(tmp_path / "nope", [])


def test_symlink_out_of_the_repo_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    secret = write(tmp_path, "secret.txt", "TOKEN=hunter2\n")
    (root / ".github").mkdir(parents=True)
    os.symlink(secret, root / "AGENTS.md")
    outside_dir = tmp_path / "elsewhere"
    write(outside_dir, "leak.instructions.md", "TOKEN=hunter2\n")
    os.symlink(outside_dir, root / ".github" / "instructions")
    items = load_instructions(root, ["a.py"])
    assert all("hunter2" not in i.text for i in items)
    assert {(i.source, i.skipped) for i in items} == {
        ("AGENTS.md", "points outside the repository"),
        (".github/instructions", "points outside the repository"),
    }


def test_symlinked_subdirectory_is_not_descended(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(tmp_path, "outside/x.instructions.md", "leak\n")
    (root / ".github/instructions").mkdir(parents=True)
    os.symlink(tmp_path / "outside", root / ".github/instructions/sub")
    assert load_instructions(root, ["a.py"]) == []


def test_symlink_inside_the_repo_is_loaded_once(repo: Path) -> None:
    (repo / "AGENTS.md").unlink()
    os.symlink(repo / ".github/copilot-instructions.md", repo / "AGENTS.md")
    items = load_instructions(repo, [])
    assert sources(items).count(".github/copilot-instructions.md") == 1
    assert "AGENTS.md" not in [i.source for i in items]


def test_dangling_link_and_fifo_are_skipped_not_read(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / ".github").mkdir(parents=True)
    os.symlink(root / "missing.md", root / "AGENTS.md")
    os.mkfifo(root / ".github/copilot-instructions.md")
    items = load_instructions(root, [])
    assert {(i.source, i.skipped) for i in items} == {
        (".github/copilot-instructions.md", "not a regular file"),
        ("AGENTS.md", "broken symbolic link"),
    }


def test_oversized_file_is_skipped(repo: Path) -> None:
    write(repo, "AGENTS.md", "x" * 5000)
    items = load_instructions(repo, [], max_file_bytes=4096)
    agents = next(i for i in items if i.source == "AGENTS.md")
    assert agents.text == "" and "over the 4096-byte limit" in agents.skipped


def test_total_budget_truncates_then_skips(repo: Path) -> None:
    write(repo, ".github/copilot-instructions.md", "A" * 300)
    items = load_instructions(repo, ["x.py"], max_chars=200)
    first = items[0]
    assert first.source == ".github/copilot-instructions.md"
    assert len(first.text) <= 200 and "[truncated" in first.text
    assert all(i.skipped.startswith("instruction budget of 200 chars used up") for i in items[1:])
    assert sum(len(i.text) for i in items) <= 200


def test_unsafe_characters_are_stripped(repo: Path) -> None:
    write(repo, "AGENTS.md", "Run\u202e tests\u200b always\r\n\x1b[2J")
    agents = next(i for i in load_instructions(repo, []) if i.source == "AGENTS.md")
    assert agents.text == "Run tests always\n[2J"


def test_invalid_utf8_does_not_fail(repo: Path) -> None:
    (repo / "AGENTS.md").write_bytes(b"ok \xff\xfe bytes")
    agents = next(i for i in load_instructions(repo, []) if i.source == "AGENTS.md")
    assert agents.text.startswith("ok ") and agents.text.endswith(" bytes")


def test_explosive_apply_to_is_reported(repo: Path) -> None:
    write(
        repo,
        ".github/instructions/bomb.instructions.md",
        '---\napplyTo: "{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}"\n---\nx\n',
    )
    bomb = next(i for i in load_instructions(repo, ["a"]) if "bomb" in i.source)
    assert "unusable applyTo" in bomb.skipped


def test_render(repo: Path) -> None:
    write(repo, "AGENTS.md", "x" * 100)
    text = render_instructions(load_instructions(repo, ["a.py"], max_file_bytes=50))
    assert text.startswith("## Repository instructions\n")
    assert (
        "### From `.github/instructions/python.instructions.md` (applies to `**/*.py`)\n\nPrefer pathlib."
        in text
    )
    assert "_Not loaded: `AGENTS.md` (100 bytes, over the 50-byte limit)._" in text


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("**/*.py", "a.py", True),
        ("**/*.py", "x/y/a.py", True),
        ("**/*.py", "a.pyc", False),
        ("*.py", "a.py", True),
        ("*.py", "x/a.py", False),
        ("src/**", "src/a/b.c", True),
        ("src/**", "srcx/a", False),
        ("src/**/test_*.py", "src/test_a.py", True),
        ("src/**/test_*.py", "src/deep/er/test_a.py", True),
        ("src/*/x", "src/a/b/x", False),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("[!a]b", "cb", True),
        ("[!a]b", "ab", False),
        ("[ch]at", "hat", True),
        ("src/**/*.{ts,tsx}", "src/a/b.tsx", True),
        ("{src,lib}/**", "lib/x.js", True),
        ("/docs/*.md", "docs/a.md", True),
        ("a+b(c).md", "a+b(c).md", True),
        ("a+b(c).md", "aab(c).md", False),
        ("**", "anything/at/all", True),
    ],
)
def test_glob_semantics(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


def test_glob_brace_limit() -> None:
    with pytest.raises(ValueError, match="more than 64"):
        glob_to_regex("{a,b}" * 7)


@pytest.fixture
def claude_repo(tmp_path: Path) -> Path:
    """Every source the seed read, with nested AGENTS.md at two depths."""
    root = tmp_path / "repo"
    write(root, ".github/copilot-instructions.md", "Copilot.\n")
    write(root, ".claude/CLAUDE.md", "Claude dir.\n")
    write(root, ".claude/instructions/py.instructions.md", '---\napplyTo: "**/*.py"\n---\nClaude py.\n')
    write(root, ".claude/instructions/go.instructions.md", '---\napplyTo: "**/*.go"\n---\nClaude go.\n')
    write(root, "AGENTS.md", "Root agents.\n")
    write(root, "pkg/AGENTS.md", "Pkg agents.\n")
    write(root, "pkg/sub/AGENTS.md", "Sub agents.\n")
    write(root, "other/AGENTS.md", "Other agents.\n")
    write(root, "node_modules/lib/AGENTS.md", "Vendored.\n")
    write(root, ".github/agents/AGENTS.md", "Not an instruction file.\n")
    write(root, "CLAUDE.md", "Root claude.\n")
    return root


def test_seed_sources_in_seed_order_and_nearest_nested_agents_md_wins(claude_repo: Path) -> None:
    items = load_instructions(claude_repo, ["pkg/sub/deep/x.py", "pkg/y.py", "top.py"])
    assert sources(items) == [
        ".github/copilot-instructions.md",
        ".claude/CLAUDE.md",
        ".claude/instructions/py.instructions.md",
        "AGENTS.md",
        "pkg/AGENTS.md",  # nearest for pkg/y.py
        "pkg/sub/AGENTS.md",  # nearest for pkg/sub/deep/x.py (pkg/AGENTS.md is not, for that file)
        "CLAUDE.md",
    ]
    sub = next(i for i in items if i.source == "pkg/sub/AGENTS.md")
    assert sub.covers == "pkg/sub/"
    rendered = render_instructions(items)
    assert "### From `pkg/sub/AGENTS.md` (for files under `pkg/sub/`" in rendered


def test_only_the_nearest_nested_agents_md_applies_to_a_file(claude_repo: Path) -> None:
    nested = [s for s in sources(load_instructions(claude_repo, ["pkg/sub/x.py"])) if "/" in s]
    assert [s for s in nested if s.endswith("AGENTS.md")] == ["pkg/sub/AGENTS.md"]


def test_without_changed_paths_every_nested_agents_md_is_used(claude_repo: Path) -> None:
    found = sources(load_instructions(claude_repo, []))
    assert [s for s in found if s.endswith("/AGENTS.md")] == [
        "other/AGENTS.md",
        "pkg/AGENTS.md",
        "pkg/sub/AGENTS.md",
    ]
