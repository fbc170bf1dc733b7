"""The ``tributary`` command: one entry point for every process of the platform.

Each subcommand's module is imported only when that subcommand runs: ``tributary keys new``
or ``tributary --help`` load neither the stream workers nor Arrow, boto3, polars or Dagster.
The listing shows the one-line summaries of :data:`SUBCOMMANDS` (a test holds them equal to
the commands' own). :func:`main` (the ``tributary`` script) turns a failure into one line on
stderr and an exit code of :mod:`cli.errors`.
"""

from __future__ import annotations

import importlib
import sys
import traceback
from dataclasses import dataclass
from typing import Any

import typer
import typer.core
import typer.main

# The click that typer runs on (typer vendors its own copy).
from typer import _click as click

from cli.errors import ExitCode, epilog, failure_of


@dataclass(frozen=True)
class Subcommand:
    target: str  # "module:attribute": a typer.Typer group or a command function
    summary: str  # the line `tributary --help` shows


SUBCOMMANDS: dict[str, Subcommand] = {
    "stack": Subcommand(
        "stack.cli:app", "Run the platform's servers as local processes (no Docker needed)."
    ),
    "run": Subcommand("cli.run:app", "Run one of the platform's processes in the foreground."),
    "keys": Subcommand("cli.keys:app", "API keys of the collector."),
    "dlq": Subcommand("cli.dlq:app", "Dead letters: inspect them by reason, replay them."),
    "produce": Subcommand(
        "cli.produce:app",
        "Send events to the collector: generated clickstream or IoT data, or a file.",
    ),
    "demo": Subcommand(
        "cli.demo:demo",
        "Run the platform on this machine and reconcile every event sent, stage by stage.",
    ),
    "query": Subcommand(
        "cli.query:query", "Run one query over the curated lake and print the answer as a table."
    ),
    "trace": Subcommand(
        "cli.trace:trace", "Say where one event is in every stage, where it stopped and why."
    ),
    "forget": Subcommand(
        "cli.forget:forget",
        "Erase a person: search store, raw zone and curated lake; record it in the audit table.",
    ),
}


def load(name: str) -> click.Command:
    """Import subcommand ``name``'s module and return its click command."""
    module_name, attribute = SUBCOMMANDS[name].target.split(":")
    obj: Any = getattr(importlib.import_module(module_name), attribute)
    if isinstance(obj, typer.Typer):
        command: click.Command = typer.main.get_group(obj)
    else:
        single = typer.Typer(add_completion=False)
        single.command(name)(obj)
        command = typer.main.get_command(single)
    command.name = name
    return command


class LazyGroup(typer.core.TyperGroup):
    """Lists the subcommands by their summaries; imports one only to run it (or its help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *SUBCOMMANDS]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            # What the listing needs, without importing the subcommand.
            return typer.core.TyperCommand(cmd_name, help=SUBCOMMANDS[cmd_name].summary)
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name in SUBCOMMANDS:
            command = load(name)
        return name, command, rest


app = typer.Typer(
    cls=LazyGroup,
    help="Tributary, an open event-data platform.",
    epilog=epilog(),
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    pass


def main() -> None:
    """The ``tributary`` script: run the command; a failure is one line and an exit code."""
    try:
        app()
    except Exception as exc:
        failure = failure_of(exc)
        if failure is None:
            traceback.print_exception(exc)
            sys.exit(ExitCode.DEFECT)
        code, message = failure
        sys.stderr.write(f"error: {message}\n")
        sys.exit(code)


if __name__ == "__main__":
    main()
