"""Real git plumbing on bare repositories: the stand-in never fakes what git would say."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ZERO_SHA = "0" * 40
# Fixed identity and a per-repository clock keep seeded commits reproducible across runs.
AUTHOR_NAME = "Stand-in Seeder"
AUTHOR_EMAIL = "seeder@standin.invalid"
EPOCH = 1_700_000_000


class GitError(RuntimeError):
    """A git command failed; the message carries git's stderr."""


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    parents: list[str]
    author_name: str
    author_email: str
    authored_ts: int
    committer_name: str
    committer_email: str
    committed_ts: int
    message: str


@dataclass(frozen=True)
class RawChange:
    """One entry of `git diff --raw -M`: modes as GitLab shows them ("0" for absent)."""

    old_path: str
    new_path: str
    a_mode: str
    b_mode: str
    status: str  # A, D, M, R, T


class BareRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._clock = 0

    def git(self, *args: str, input_bytes: bytes | None = None, env: dict[str, str] | None = None) -> bytes:
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.path),
            "GIT_CONFIG_NOSYSTEM": "1",
            "LC_ALL": "C",
        }
        if env:
            full_env.update(env)
        proc = subprocess.run(
            ["git", "-c", "core.quotePath=false", "--git-dir", str(self.path), *args],
            input=input_bytes,
            capture_output=True,
            env=full_env,
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout

    def text(self, *args: str, input_bytes: bytes | None = None, env: dict[str, str] | None = None) -> str:
        return self.git(*args, input_bytes=input_bytes, env=env).decode()

    @classmethod
    def init(cls, path: Path, default_branch: str) -> BareRepo:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "-q", f"--initial-branch={default_branch}", str(path)],
            check=True,
            capture_output=True,
        )
        repo = cls(path)
        # Pushes over HTTP and fetch-by-SHA must work like on GitLab.
        for key, value in (
            ("http.receivepack", "true"),
            ("uploadpack.allowAnySHA1InWant", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
            ("receive.denyNonFastForwards", "false"),
            ("core.logAllRefUpdates", "true"),
        ):
            repo.git("config", key, value)
        return repo

    def ref_sha(self, ref: str) -> str | None:
        try:
            return (
                self.text("rev-parse", "--verify", "-q", "--end-of-options", f"{ref}^{{commit}}").strip()
                or None
            )
        except GitError:
            return None

    def branch_sha(self, branch: str) -> str | None:
        return self.ref_sha(f"refs/heads/{branch}")

    def branches(self) -> dict[str, str]:
        out = self.text("for-each-ref", "--format=%(refname:strip=2) %(objectname)", "refs/heads/")
        return dict(line.rsplit(" ", 1) for line in out.splitlines() if line)

    def branches_containing(self, sha: str) -> list[str]:
        out = self.text("for-each-ref", "--contains", sha, "--format=%(refname:strip=2)", "refs/heads/")
        return [line for line in out.splitlines() if line]

    def is_ancestor(self, older: str, newer: str) -> bool:
        try:
            self.git("merge-base", "--is-ancestor", older, newer)
            return True
        except GitError:
            return False

    def merge_base(self, a: str, b: str) -> str | None:
        try:
            return self.text("merge-base", a, b).strip() or None
        except GitError:
            return None

    def commit_files(
        self,
        branch: str,
        files: dict[str, str | bytes | None],
        message: str,
        *,
        parent: str | None,
        expected_old: str | None = None,
        renames: dict[str, str] | None = None,
    ) -> str:
        """Write a commit on `branch` whose tree is `parent`'s with `files` applied (None deletes).

        The ref moves only if it still points at `expected_old` (None: the branch must not exist),
        so a concurrent push is never overwritten silently."""
        with tempfile.TemporaryDirectory() as tmp:
            # A scratch index (and an empty work tree, which update-index insists on) per commit.
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index"), "GIT_WORK_TREE": tmp}
            if parent:
                self.git("read-tree", parent, env=env)
            for old, new in (renames or {}).items():
                entry = self.text("ls-files", "-s", "--", old, env=env).strip() if parent else ""
                if not entry:
                    raise GitError(f"cannot rename missing file {old!r}")
                mode, blob = entry.split()[:2]
                self.git("update-index", "--force-remove", "--", old, env=env)
                self.git("update-index", "--add", "--cacheinfo", f"{mode},{blob},{new}", env=env)
            for path, content in files.items():
                if content is None:
                    self.git("update-index", "--force-remove", "--", path, env=env)
                    continue
                data = content.encode() if isinstance(content, str) else content
                blob = self.text("hash-object", "-w", "--stdin", input_bytes=data).strip()
                self.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
            tree = self.text("write-tree", env=env).strip()
        self._clock += 1
        stamp = f"{EPOCH + self._clock} +0000"
        ident = {
            "GIT_AUTHOR_NAME": AUTHOR_NAME,
            "GIT_AUTHOR_EMAIL": AUTHOR_EMAIL,
            "GIT_AUTHOR_DATE": stamp,
            "GIT_COMMITTER_NAME": AUTHOR_NAME,
            "GIT_COMMITTER_EMAIL": AUTHOR_EMAIL,
            "GIT_COMMITTER_DATE": stamp,
        }
        parents = ["-p", parent] if parent else []
        sha = self.text("commit-tree", tree, *parents, input_bytes=message.encode(), env=ident).strip()
        self.git("update-ref", f"refs/heads/{branch}", sha, expected_old or ZERO_SHA)
        return sha

    def read_blob(self, ref: str, path: str) -> bytes | None:
        try:
            return self.git("cat-file", "blob", f"{ref}:{path}")
        except GitError:
            return None

    def commits_between(self, base: str | None, head: str, *, limit: int = 0) -> list[CommitInfo]:
        """Commits reachable from head but not base, newest first (GitLab's order)."""
        rng = f"{base}..{head}" if base else head
        fmt = "%H%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x1e"
        extra = [f"--max-count={limit}"] if limit else []
        out = self.git("log", f"--format={fmt}", *extra, rng, "--").decode(errors="replace")
        commits = []
        for record in out.split("\x1e"):
            record = record.lstrip("\n")
            if not record:
                continue
            sha, parents, an, ae, at, cn, ce, ct, body = record.split("\x00", 8)
            commits.append(CommitInfo(sha, parents.split(), an, ae, int(at), cn, ce, int(ct), body))
        return commits

    def commit_info(self, sha: str) -> CommitInfo:
        return self.commits_between(None, sha, limit=1)[0]

    def raw_changes(self, base: str, head: str) -> list[RawChange]:
        out = self.git("diff", "--raw", "-z", "-M", "--no-abbrev", base, head).decode(errors="replace")
        fields = out.split("\x00")
        changes: list[RawChange] = []
        i = 0
        while i < len(fields) and fields[i]:
            meta = fields[i].lstrip(":").split()
            status = meta[4][0]
            if status in "RC":
                old, new = fields[i + 1], fields[i + 2]
                i += 3
            else:
                old = new = fields[i + 1]
                i += 2
            changes.append(RawChange(old, new, _mode(meta[0]), _mode(meta[1]), status))
        return changes

    def patch_text(self, base: str, head: str, change: RawChange) -> str:
        """The hunks of one file, without headers, as GitLab's `diff` field carries them."""
        paths = (
            [change.old_path] if change.old_path == change.new_path else [change.old_path, change.new_path]
        )
        out = self.git("diff", "-M", "--no-color", "--no-ext-diff", base, head, "--", *paths)
        text = out.decode(errors="replace")
        start = text.find("\n@@ ")
        return "" if start < 0 else text[start + 1 :]


def _mode(raw: str) -> str:
    return "0" if set(raw) == {"0"} else raw
