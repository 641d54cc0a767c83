"""Helpers the test modules share (pytest puts this folder on sys.path)."""

from __future__ import annotations

from embodylab.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Runs `embodylab ARGS` in this process; returns (exit status, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err
