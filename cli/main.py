"""The ``tributary`` command: one entry point for every process of the platform."""

from __future__ import annotations

import typer

from cli.demo import demo
from stack.cli import app as stack_app

app = typer.Typer(
    help="Tributary, an open event-data platform.", no_args_is_help=True, add_completion=False
)
app.add_typer(stack_app, name="stack")
app.command()(demo)
