"""`make demo` runs end to end on embedded defaults: no credentials, no network."""

import subprocess
import sys

from contracts.settings import REPO_ROOT


def test_demo_posts_a_review_and_prints_the_web_ui_link():
    out = subprocess.run(
        [sys.executable, "-m", "devenv.demo", "--once"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    assert "Review posted" in out.stdout
    assert "**[critical]** Avoid eval()" in out.stdout
    assert "```suggestion:-0+0" in out.stdout
    assert "### Copilot review" in out.stdout
    assert "/namespaces/default/workflows/review:" in out.stdout
