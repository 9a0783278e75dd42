"""``--help`` reads as written: rich keeps the docstrings' line breaks and re-wraps none of
them on an 80-column terminal; every command shows an example."""

from __future__ import annotations

import inspect

import click
import pytest
import typer
from typer.testing import CliRunner

from patchpilot.cli import app

runner = CliRunner()

COMMANDS = ([], ["match"], ["similar"], ["tweak"], ["build-index"], ["corpus"], ["render"], ["presets"], ["presets", "list"],
            ["serve"])


def _help(args: list[str]) -> str:
    # rich reads the width from COLUMNS when the output is no terminal
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _docstring(args: list[str]) -> str:
    command: click.Command = typer.main.get_command(app)
    for name in args:
        command = command.commands[name]  # type: ignore[attr-defined]
    return inspect.cleandoc(command.help or "")


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "patchpilot")
def test_help_keeps_every_line_of_the_docstring_whole(args: list[str]) -> None:
    shown = [line.strip() for line in _help(args).splitlines()]
    for line in _docstring(args).splitlines():
        if line.strip():
            assert line.strip() in shown, f"re-wrapped: {line!r}"


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: " ".join(a) or "patchpilot")
def test_every_help_has_an_example_line(args: list[str]) -> None:
    lines = _help(args).splitlines()
    heading = next(i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:"))
    assert lines[heading + 1].strip().startswith("patchpilot ")


def test_build_index_help_keeps_its_sentences_on_one_line() -> None:
    text = _help(["build-index"])
    assert any("An interrupted build resumes" in line for line in text.splitlines())


def test_match_help_says_what_the_distance_means() -> None:
    text = _help(["match"])
    assert "0 is the same sound" in text and "rough (a starting point only)" in text
