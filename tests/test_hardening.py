"""The worker and the API make themselves undumpable, so a same-user agent process cannot read their
environment (tokens) from /proc/<pid>/environ."""

import subprocess
import sys


def test_make_undumpable_in_a_child_process():
    code = "from contracts.hardening import *; print(is_dumpable(), make_undumpable(), is_dumpable())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.split() == ["True", "True", "False"]


def test_the_api_app_factory_hardens_its_process():
    code = (
        "from api.app import create_app; from contracts.settings import Settings\n"
        "from contracts.hardening import is_dumpable\n"
        "create_app(Settings(_env_file=None)); print(is_dumpable())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip().splitlines()[-1] == "False"
