"""The README's quick start: two commands that create and use a virtual environment (a
system Python under PEP 668 refuses pip install), and CI runs the second one as written."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def quick_start() -> list[str]:
    section = README.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_two_commands_each_creating_and_using_a_venv() -> None:
    demo, tests = quick_start()
    for command in (demo, tests):
        assert command.startswith("python3 -m venv .venv && .venv/bin/pip install ")
        assert "sudo" not in command and "--break-system-packages" not in command
    assert demo.endswith(".venv/bin/sessionwatch demo")
    assert tests.endswith(".venv/bin/python -m pytest -q")


def test_no_system_wide_pip_install_in_any_readme_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    for line in "\n".join(blocks).splitlines():
        if re.search(r"\bpip install\b", line):
            assert ".venv/bin/pip install" in line, line


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [line for line in ci.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in commands if "pip install" in line]  # no system-wide install
    assert "python3-venv" in ci
    extract = re.search(r"^test_command=\$\((.*)\)$", ci, re.M)
    assert extract is not None and 'eval "$test_command"' in ci
    found = subprocess.run(["bash", "-c", extract.group(1)], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.strip()
    assert found == quick_start()[1]
