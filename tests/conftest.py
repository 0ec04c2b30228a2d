"""Fixtures shared by the test modules."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., object]:
    """Invoke the ``shadowlab`` CLI in a fresh temporary directory (arguments are str()-ed)."""
    from shadowlab.cli import app  # registers every stage's commands

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)

    def invoke(*args: object) -> object:
        return runner.invoke(app, [str(a) for a in args])

    return invoke
