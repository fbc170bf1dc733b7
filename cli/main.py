"""The ``tributary`` command: one entry point for every process of the platform."""

from __future__ import annotations

import typer

from cli.demo import demo
from cli.dlq import app as dlq_app
from cli.keys import app as keys_app
from cli.produce import app as produce_app
from cli.query import query
from cli.run import app as run_app
from stack.cli import app as stack_app

app = typer.Typer(
    help="Tributary, an open event-data platform.", no_args_is_help=True, add_completion=False
)
app.add_typer(stack_app, name="stack")
app.add_typer(run_app, name="run")
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(produce_app, name="produce")
app.command()(demo)
app.command()(query)
