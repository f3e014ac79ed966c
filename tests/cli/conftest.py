"""The command line's tests run in a fresh working folder, with a copy of the session CA."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from simulator.cli import main
from simulator.workspace import CaFolder
from tests.cli.external import ServedBackend, serve_backend, use_test_accounts


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


@pytest.fixture
def ca_dir(in_tmp: Path, ca_folder: CaFolder) -> Path:
    """A private copy of the session CA in the working folder, as ./certs."""
    shutil.copytree(ca_folder.path, in_tmp / "certs")
    return in_tmp / "certs"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def assert_input_error(result: Result, *fragments: str) -> None:
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def table(stdout: str, header: str) -> list[list[str]]:
    """The cells of the rows under the line matching ``header``, to the first empty line."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(header, line))
    rows = []
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test accounts' keys (owner: the environment; rival: AWS profile ``rival``)."""
    use_test_accounts(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, ca_folder: CaFolder
) -> Iterator[ServedBackend]:
    """``clicksim backend serve`` as a process, for the module's tests."""
    with serve_backend(tmp_path_factory.mktemp("served"), ca_folder.path) as backend:
        yield backend
