"""The benchmark importers on data in the benchmarks' shapes, against real git clones made here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from eval.__main__ import main
from eval.corpus import load_corpus


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "HOME": str(repo), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def make_repo(repos: Path) -> tuple[Path, str, str]:
    repo = repos / "acme" / "shop"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "cart.py").write_text("def total(items):\n    return sum(items)\n")
    (repo / "old.py").write_text("GONE = 1\n")
    (repo / "logo.bin").write_bytes(b"\x89PNG\x00\xff")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "cart.py").write_text(
        "def total(items):\n    return sum(items)\n\n\ndef discount(p):\n    return p * 1.1\n"
    )
    (repo / "old.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "head")
    head = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "branch", "pr-7", head)
    git(repo, "checkout", "-q", "main")
    return repo, base, head


def test_aacr_bench_records_become_cases(tmp_path):
    _, base, head = make_repo(tmp_path / "repos")
    data = tmp_path / "positive_samples.json"
    data.write_text(json.dumps([
        {
            "githubPrUrl": "https://github.com/acme/shop/pull/7", "source_commit": base, "target_commit": head,
            "project_main_language": "Python",
            "comments": [
                {"path": "cart.py", "side": "right", "from_line": 5, "to_line": 6, "note": "A discount that raises the price.",
                 "category": "Code Defect", "is_ai_comment": False},
                {"path": "old.py", "side": "left", "from_line": 1, "to_line": 1, "note": "on a removed line"},
            ],
        },
        {"githubPrUrl": "https://github.com/acme/absent/pull/1", "source_commit": base, "target_commit": head,
         "comments": [{"path": "x", "side": "right", "from_line": 1, "to_line": 1, "note": "n"}]},
        {"note": "not a PR"},
    ]))  # fmt: skip
    out = tmp_path / "corpus"
    assert main(["import-aacr", str(data), "--repos", str(tmp_path / "repos"), "--out", str(out)]) == 0
    (case,) = load_corpus(out)
    assert case.id == "aacr-acme-shop-7" and case.language == "Python"
    assert [(e.file, e.line, e.severity) for e in case.expected] == [("cart.py", 6, "Code Defect")]
    assert case.deleted == ("old.py",) and "old.py" not in case.head and "logo.bin" not in case.base
    assert case.changed_paths == {"cart.py", "old.py"}


def test_martian_golden_comments_become_cases_without_locations(tmp_path, capsys):
    make_repo(tmp_path / "repos")
    data = tmp_path / "shop.json"
    data.write_text(json.dumps([
        {"pr_title": "Add discounts", "url": "https://github.com/acme/shop/pull/7",
         "comments": [{"comment": "discount multiplies by 1.1", "severity": "High"}]},
        {"pr_title": "Not fetched", "url": "https://github.com/acme/shop/pull/8",
         "comments": [{"comment": "c", "severity": "Low"}]},
    ]))  # fmt: skip
    out = tmp_path / "corpus"
    assert main(["import-martian", str(data), "--repos", str(tmp_path / "repos"), "--out", str(out)]) == 0
    assert "git -C" in capsys.readouterr().out  # the skipped PR says how to fetch it
    (case,) = load_corpus(out)
    assert case.title == "Add discounts" and [(e.file, e.line, e.severity) for e in case.expected] == [
        (None, None, "High")
    ]


def test_unreadable_benchmark_data_is_refused(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "an array"}')
    assert main(["import-aacr", str(bad), "--repos", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "expected a JSON array" in capsys.readouterr().err
