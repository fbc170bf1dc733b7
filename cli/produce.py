"""``tributary produce``: push generated or replayed events to the collector.

Events go through a spool file first, so an interrupted run loses nothing: the next run with
the same spool sends what is left before anything new. The exit code is 1 when events remain
unsent (collector unreachable past the retries, a refused key, Ctrl-C).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
)
from rich.table import Table

from cli.errors import CommandError, Unreachable
from ingestion.producers.config import ProducerOptions, ProducerSettings
from ingestion.producers.emitter import Emitter, EmitterStats
from ingestion.producers.sources import FieldMapping, FileSource
from ingestion.producers.spool import SpoolLocked, SqliteSpool
from ingestion.producers.transports import (
    RetryableError,
    SendResult,
    TransportError,
    make_transport,
)
from simulator.events import ClickstreamSource, IoTSource

app = typer.Typer(
    help="Send events to the collector: generated clickstream or IoT data, or a file.",
    no_args_is_help=True,
)
console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
# The progress display reports retries and failures; the library's log lines would repeat them.
logging.getLogger("ingestion.producers").addHandler(logging.NullHandler())


class TransportName(StrEnum):
    REST = "rest"
    GRPC = "grpc"


Seed = Annotated[int, typer.Option(help="Seed of the generator (same seed, same events).")]
BadShare = Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of broken events.")]
Rate = Annotated[float | None, typer.Option(min=0.001, help="Events per second (default: max).")]
BatchSize = Annotated[int | None, typer.Option(min=1, max=1000, help="Events per request.")]
Kind = Annotated[TransportName, typer.Option("--transport", help="rest or grpc.")]
Url = Annotated[str | None, typer.Option("--url", help="Collector HTTP URL.")]
GrpcTarget = Annotated[str | None, typer.Option(help="Collector gRPC host:port.")]
ApiKey = Annotated[
    str | None,
    typer.Option(help="API key (default: TRIBUTARY_PRODUCER__API_KEY).", show_default=False),
]
Spool = Annotated[
    Path | None,
    typer.Option(help="Spool file (default: .tributary/spool/<name>.sqlite in the project)."),
]
Gzip = Annotated[bool | None, typer.Option("--gzip/--no-gzip", help="Compress requests.")]
MaxRetries = Annotated[int | None, typer.Option(min=0, help="Retries of a batch.")]
Start = Annotated[
    str | None,
    typer.Option(
        help="Time of the first event, RFC 3339 with an offset (default: an hour ago). With "
        "the same seed it reproduces the same events, ids included.",
        show_default=False,
    ),
]


def _start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        start = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"'{value}' is not an ISO 8601 time", param_hint="--start"
        ) from exc
    if start.tzinfo is None:
        raise typer.BadParameter("give an offset, e.g. 2026-01-31T12:00:00Z", param_hint="--start")
    return start


def _options(**overrides: Any) -> ProducerOptions:
    settings = ProducerSettings()
    given = {k: v for k, v in overrides.items() if v is not None}
    if "api_key" in given:
        given["api_key"] = SecretStr(given["api_key"])
    return settings.producer.model_copy(update=given)


def produce_events(
    name: str,
    source: Iterable[Any],
    events: int | None,
    *,
    rate: float | None,
    batch_size: int | None,
    transport: TransportName,
    url: str | None,
    grpc_target: str | None,
    api_key: str | None,
    spool: Path | None,
    gzip: bool | None,
    max_retries: int | None,
) -> EmitterStats:
    options = _options(
        collector_url=url,
        grpc_target=grpc_target,
        api_key=api_key,
        batch_size=batch_size,
        gzip=gzip,
        max_retries=max_retries,
    )
    spool_path = spool or options.spool_file(name)
    try:
        store = SqliteSpool(spool_path)
    except SpoolLocked as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    sender = make_transport(transport.value, options)
    backlog = len(store)
    if backlog:
        console.print(f"{backlog} events left in {spool_path} by an earlier run are sent first")

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.0f}/s"),
        TextColumn(
            "ok [green]{task.fields[accepted]}[/] rejected [yellow]{task.fields[rejected]}[/] "
            "retries [red]{task.fields[retries]}[/]"
        ),
        console=console,
    )
    task = progress.add_task(
        name,
        total=None if events is None else events + backlog,
        rate=0.0,
        accepted=0,
        rejected=0,
        retries=0,
    )
    began = time.monotonic()
    emitter: Emitter
    gave_up: list[TransportError] = []

    def refresh(stats: EmitterStats, advance: int = 0) -> None:
        elapsed = max(time.monotonic() - began, 1e-6)
        progress.update(
            task,
            advance=advance,
            rate=stats.sent / elapsed,
            accepted=stats.accepted,
            rejected=stats.rejected_total,
            retries=stats.retries,
        )

    def on_success(result: SendResult, bodies: list[bytes]) -> None:
        refresh(emitter.stats, len(bodies))

    def on_failure(error: TransportError, attempt: int, delay: float | None) -> None:
        refresh(emitter.stats)
        if delay is None:
            gave_up.append(error)
            progress.console.print(f"[red]giving up:[/red] {error}")
        else:
            progress.console.print(
                f"[yellow]attempt {attempt} failed:[/yellow] {error}; retry in {delay:.1f}s"
            )

    emitter = Emitter.from_options(
        sender, store, options, rate=rate, on_success=on_success, on_failure=on_failure
    )
    problem: str | None = None
    try:
        with progress:
            emitter.run(source, events)
    except KeyboardInterrupt:
        problem = "interrupted"
    except ValueError as exc:  # a row of a file that cannot be mapped
        problem = str(exc)
    finally:
        emitter.stats.spooled = len(store)
        sender.close()
        store.close()
    stats = emitter.stats
    target = options.grpc_target if transport is TransportName.GRPC else options.collector_url
    _summary(stats, time.monotonic() - began, f"{transport.value} to {target}")
    problem = problem or stats.error
    if stats.spooled or problem:
        left = (
            f"{stats.spooled} events remain in {spool_path}; run again to send them"
            if stats.spooled
            else ""
        )
        if gave_up and isinstance(gave_up[-1], RetryableError) and gave_up[-1].status is None:
            # No answer at all, retries exhausted: the collector is down or elsewhere.
            raise Unreachable(
                "the collector", str(target), "; ".join(filter(None, [problem, left]))
            )
        raise CommandError("; ".join(filter(None, [problem, left])))
    return stats


def _summary(stats: EmitterStats, elapsed: float, where: str) -> None:
    table = Table("what", "events", title="Producer summary")
    table.add_row("generated", str(stats.generated))
    if stats.from_spool:
        table.add_row("from earlier runs", str(stats.from_spool))
    table.add_row("sent", str(stats.sent))
    table.add_row("accepted", str(stats.accepted))
    table.add_row("rejected", str(stats.rejected_total))
    for reason, n in sorted(stats.rejected.items()):
        table.add_row(f"  rejected: {reason}", str(n))
    table.add_row("retries", str(stats.retries))
    table.add_row("left in spool", str(stats.spooled))
    console.print(table)
    rate = stats.sent / elapsed if elapsed > 0 else 0.0
    console.print(f"{stats.sent} events answered in {elapsed:.2f}s ({rate:.0f}/s), via {where}")


@app.command()
def clickstream(
    events: Annotated[int, typer.Option("--events", "-n", min=0, help="How many.")] = 1000,
    users: Annotated[int, typer.Option(min=1, help="Distinct users.")] = 100,
    seed: Seed = 7,
    bad_share: BadShare = 0.0,
    start: Start = None,
    rate: Rate = None,
    batch_size: BatchSize = None,
    transport: Kind = TransportName.REST,
    url: Url = None,
    grpc_target: GrpcTarget = None,
    api_key: ApiKey = None,
    spool: Spool = None,
    gzip: Gzip = None,
    max_retries: MaxRetries = None,
) -> None:
    """Shop sessions: page views, product views, carts, checkouts and purchases."""
    produce_events(
        "clickstream",
        ClickstreamSource(users, seed, bad_share, _start(start)),
        events,
        rate=rate,
        batch_size=batch_size,
        transport=transport,
        url=url,
        grpc_target=grpc_target,
        api_key=api_key,
        spool=spool,
        gzip=gzip,
        max_retries=max_retries,
    )


@app.command()
def iot(
    events: Annotated[int, typer.Option("--events", "-n", min=0, help="How many.")] = 1000,
    devices: Annotated[int, typer.Option(min=1, help="Distinct sensors.")] = 20,
    seed: Seed = 7,
    bad_share: BadShare = 0.0,
    start: Start = None,
    rate: Rate = None,
    batch_size: BatchSize = None,
    transport: Kind = TransportName.REST,
    url: Url = None,
    grpc_target: GrpcTarget = None,
    api_key: ApiKey = None,
    spool: Spool = None,
    gzip: Gzip = None,
    max_retries: MaxRetries = None,
) -> None:
    """Sensor readings of a fleet of IoT devices."""
    produce_events(
        "iot",
        IoTSource(devices, seed, bad_share, _start(start)),
        events,
        rate=rate,
        batch_size=batch_size,
        transport=transport,
        url=url,
        grpc_target=grpc_target,
        api_key=api_key,
        spool=spool,
        gzip=gzip,
        max_retries=max_retries,
    )


@app.command()
def file(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSONL, CSV, Parquet.")],
    mapping: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="FieldMapping as JSON.")
    ],
    events: Annotated[
        int | None, typer.Option("--events", "-n", min=0, help="At most this many (default all).")
    ] = None,
    rate: Rate = None,
    batch_size: BatchSize = None,
    transport: Kind = TransportName.REST,
    url: Url = None,
    grpc_target: GrpcTarget = None,
    api_key: ApiKey = None,
    spool: Spool = None,
    gzip: Gzip = None,
    max_retries: MaxRetries = None,
) -> None:
    """Replay a file's rows as events (see ingestion.producers.sources for the mapping)."""
    try:
        field_mapping = FieldMapping.model_validate_json(mapping.read_bytes())
        source = FileSource(path, field_mapping)
    except (ValidationError, ValueError) as exc:
        err.print(f"[red]invalid mapping or file:[/red] {exc}")
        raise typer.Exit(2) from exc
    produce_events(
        "file",
        source,
        events,
        rate=rate,
        batch_size=batch_size,
        transport=transport,
        url=url,
        grpc_target=grpc_target,
        api_key=api_key,
        spool=spool,
        gzip=gzip,
        max_retries=max_retries,
    )
