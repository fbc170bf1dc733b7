"""``tributary trace EVENT_ID [--json]``: where one event is in every stage, and why it stopped."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Annotated

import typer

from cli.errors import ExitCode
from privacy.trace import DEFAULT_WINDOW, Hints, Outcome
from privacy.trace import trace as run_trace
from resources.settings import PlatformSettings

EXIT = {
    Outcome.COMPLETE: ExitCode.OK,
    Outcome.PARTIAL: ExitCode.PARTLY_FOUND,
    Outcome.NOT_FOUND: ExitCode.NOT_FOUND,
}


def trace(
    event_id: Annotated[str, typer.Argument(help="The event's event_id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
    day: Annotated[
        datetime | None,
        typer.Option(
            "--date", formats=["%Y-%m-%d"], help="The event's date (UTC): the lake's partition."
        ),
    ] = None,
    at: Annotated[
        datetime | None,
        typer.Option(help="About when it was sent (ISO 8601, UTC if no offset)."),
    ] = None,
    user_id: Annotated[
        str | None, typer.Option(help="Its context.user_id: one partition per topic.")
    ] = None,
    window_minutes: Annotated[
        float,
        typer.Option(help="Minutes read either side of its time where no offset is known."),
    ] = DEFAULT_WINDOW.total_seconds() / 60,
) -> None:
    """Say where one event is in every stage, where it stopped and why.

    Exit 0 when it reached its end (curated and kept), 6 when it stopped somewhere (a dead
    letter, a quarantine) or a later stage lacks it, 7 when no stage has it.
    """
    hints = Hints(
        at=None if at is None else (at if at.tzinfo else at.astimezone()),
        day=None if day is None else date(day.year, day.month, day.day),
        user_id=user_id,
        window=timedelta(minutes=window_minutes),
    )
    result = run_trace(PlatformSettings(), event_id, hints)
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        for line in result.lines():
            typer.echo(line)
    code = EXIT[result.outcome]
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))
