"""``tributary dlq inspect|replay``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from resources.settings import PlatformSettings
from streaming.dlq import DeadLetterTopic, inspect, replay

app = typer.Typer(help="Dead letters: inspect them by reason, replay them.")
console = Console(highlight=False, soft_wrap=True)

Which = Annotated[DeadLetterTopic, typer.Argument(help="Which dead-letter topic.")]


@app.command("inspect")
def inspect_command(which: Which = DeadLetterTopic.ENRICHED) -> None:
    """Count the dead letters of a topic by stage and failure type, with the top reasons."""
    settings = PlatformSettings()
    result = inspect(settings, which)
    table = Table("stage", "failure type", "count", title=f"{which} dead letters: {result.total}")
    for (stage, failure_type), n in result.by_reason.most_common():
        table.add_row(stage, failure_type, str(n))
    console.print(table)
    errors = Table("failure type", "field", "reason", "count", title="top reasons")
    for (failure_type, fld, reason), n in result.top_errors.most_common(10):
        errors.add_row(failure_type, fld, reason, str(n))
    console.print(errors)
    if result.unreadable:
        console.print(f"[yellow]{result.unreadable} records are not failed events[/]")


@app.command("replay")
def replay_command(
    which: Which = DeadLetterTopic.ENRICHED,
    reason: Annotated[
        list[str] | None, typer.Option(help="Only these failure types (repeatable).")
    ] = None,
    max_replays: Annotated[int, typer.Option(help="Leave dead letters replayed this often.")] = 3,
    limit: Annotated[int | None, typer.Option(help="Move at most this many.")] = None,
) -> None:
    """Re-publish dead letters' originals to their source topic; resumes where it stopped."""
    settings = PlatformSettings()
    try:
        report = replay(settings, which, set(reason or []) or None, max_replays, limit)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    table = Table("what", "count", title=f"replay to {report.target}")
    for failure_type, n in sorted(report.moved.items()):
        table.add_row(f"moved: {failure_type}", str(n))
    for failure_type, n in sorted(report.skipped.items()):
        table.add_row(f"skipped: {failure_type}", str(n))
    table.add_row("left (replayed too often)", str(report.exhausted))
    console.print(table)
