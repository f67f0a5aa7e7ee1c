"""Run the `marketloop` command in-process from a test, the way a shell would, and read what it printed."""

from __future__ import annotations

import sys

import pytest

from marketloop.cli import main as cli


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`marketloop ARGS...` through the console script's `main()`: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["marketloop", *args])
    code = 0
    try:
        cli.main()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err
