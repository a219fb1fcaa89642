"""The README settings table and .env.example are generated from the Settings model; keep them so."""

from pathlib import Path

from devenv.settings_doc import env_example, markdown_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_settings_table_matches_the_model():
    readme = (ROOT / "README.md").read_text()
    assert markdown_table() in readme, "run: python -m devenv.settings_doc table, paste into README"


def test_env_example_matches_the_model():
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "run: python -m devenv.settings_doc env > .env.example"
    )


def test_ci_runs_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make test" in (ROOT / "README.md").read_text()
