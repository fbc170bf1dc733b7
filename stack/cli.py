"""``tributary stack up|down|status [SERVICE...]``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stack.config import StackSettings
from stack.manager import SERVICES, Stack, State
from stack.provision import provision_kafka, provision_s3, provision_search

# A StackError or ProvisionError, or invalid settings, end the command through the entry
# point (``cli.main.main``): one line, and the exit code it documents.
app = typer.Typer(help="Run the platform's servers as local processes (no Docker needed).")
console = Console(highlight=False, soft_wrap=True)

Services = Annotated[
    list[str] | None,
    typer.Argument(help=f"Services to act on (default: all): {', '.join(SERVICES)}."),
]


def _stack() -> Stack:
    return Stack(StackSettings())


@app.command()
def up(services: Services = None) -> None:
    """Fetch (once), configure and start the servers, then wait until they are healthy."""
    stack = _stack()
    stack.up(services, report=console.print)
    _print_status(stack, services)


@app.command()
def provision() -> None:
    """Create the topics, buckets, search aliases, change capture's parts and dashboards.

    Change capture: the shop's database, the replication role, the publication and the
    Debezium connector (applied through Kafka Connect's REST API).
    """
    stack = _stack()
    report = provision_kafka(stack.settings)
    console.print(f"kafka: created {report.created or 'none'}, altered {report.altered or 'none'}")
    console.print(f"s3: buckets created {provision_s3(stack.settings) or 'none'}")
    engine = stack.settings.search.engine
    console.print(f"{engine}: indices created {provision_search(stack.settings) or 'none'}")
    for name in ("postgres", "kafka-connect"):
        service = stack.services[name]
        if service.healthy():
            for line in service.provision():
                console.print(f"{name}: {line}")
        else:
            console.print(f"{name}: not answering at {service.url}; not provisioned")
    superset = stack.services["superset"]
    if superset.healthy():
        for line in superset.provision():
            console.print(f"superset: {line}")
    else:
        console.print(f"superset: not answering at {superset.url}; dashboards not provisioned")


@app.command()
def down(services: Services = None) -> None:
    """Stop the servers this stack started; servers it only reused are left alone."""
    _stack().down(services, report=console.print)


@app.command()
def status(services: Services = None) -> None:
    """Show the state and cache folders, then each server's health, PID and URL.

    Exit 1 if a server that should run does not.
    """
    stack = _stack()
    console.print(f"state folder: {stack.state_dir}")
    console.print(f"cache folder: {stack.settings.stack.cache_dir.resolve()}")
    statuses = _print_status(stack, services)
    if any(s.state in (State.DEAD, State.STARTING) for s in statuses):
        raise typer.Exit(1)


def _print_status(stack: Stack, services: list[str] | None):  # type: ignore[no-untyped-def]
    statuses = stack.status(services)
    table = Table("service", "state", "pid", "url", "log")
    colours = {
        State.HEALTHY: "green",
        State.EXTERNAL: "cyan",
        State.STARTING: "yellow",
        State.DEAD: "red",
        State.STOPPED: "dim",
    }
    for s in statuses:
        table.add_row(
            s.name,
            f"[{colours[s.state]}]{s.state}[/]",
            str(s.pid or "-"),
            s.url,
            s.log if s.state is State.DEAD else "",
        )
    console.print(table)
    return statuses
