"""``tributary demo``: the platform end to end on this machine, as far as it is built.

1. start the local servers (Kafka, SeaweedFS, the search store: OpenSearch, or Elasticsearch
   with ``TRIBUTARY_SEARCH__ENGINE=elasticsearch``, Trino, Superset), topics and buckets;
2. start the stream processes: enrichment API, enricher, real-time loader, batch loader and
   the collector (with a fresh API key);
3. push synthetic clickstream events over REST and IoT readings over gRPC, their event times
   spread over the last few days (``--days``), a share of them deliberately broken (some
   refused by the collector, some by the enricher's schemas);
4. wait until every accepted event has reached each of its destinations, then print the
   reconciliation by ``event_id``: sent, accepted, collector dead letters by reason, enriched,
   enriched dead letters by reason, documents in the search store (events, and the dead
   letters of both stages), rows in the lake; and the latency from the collector to the
   search index, with what it means while the demo's own backlog drains;
5. curate the lake for the event dates written and print each day's KPIs read back.

With ``--json`` the figures, what each should be, the problems, the KPIs and the verdict are
one JSON document on stdout (:func:`reconciliation_document`); the rest goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.dagster import instance_home
from cli.errors import ExitCode
from cli.processes import Pipeline, PipelineSettings
from cli.produce import TransportName, produce_events
from ingestion.core.auth import new_key
from ingestion.core.config import ApiKey
from ingestion.producers.emitter import EmitterStats
from resources.search import ENGINE_TITLES
from resources.settings import (
    LOCAL_SUPERSET_ADMIN_PASSWORD,
    LakeCatalog,
    PlatformSettings,
)
from simulator.events import ClickstreamSource, IoTSource
from stack.config import StackSettings
from stack.dashboards import BundleAssets, dashboard_urls
from stack.manager import Stack
from streaming.reconcile import ProducerFigures, Reconciler, Reconciliation, producer_problems

console = Console(highlight=False, soft_wrap=True)

# Unless configured otherwise, the demo's batch loader flushes within seconds, not a minute.
DEMO_FLUSH_AGE_S = 5.0

# Days of event time the synthetic events are spread over, by default: the trend charts then
# have a trend. At most the collector's max_past_skew_s (7 days by default).
DEMO_DAYS = 3

# Events whose latency tells what an event takes through a stream without a queue: the first
# ones the collector received, before the demo's own backlog built up.
FIRST_ARRIVALS = 200


def _pipeline_settings(key_hash: str) -> PipelineSettings:
    """The environment's settings, plus the demo's API key and a quick batch-loader flush."""
    settings = PipelineSettings()
    collector = settings.collector.model_copy(
        update={
            "api_keys": [*settings.collector.api_keys, ApiKey(producer="demo", sha256=key_hash)]
        }
    )
    update: dict[str, object] = {"collector": collector}
    if "catalog" not in settings.lake.model_fields_set:
        # The curated lake goes to the stack's REST catalog, where Trino and the dashboards
        # read it (the embedded SQLite catalog is for working without the servers).
        update["lake"] = settings.lake.model_copy(update={"catalog": LakeCatalog.REST})
    if "flush_max_age_s" not in settings.batch_loader.model_fields_set:
        update["batch_loader"] = settings.batch_loader.model_copy(
            update={"flush_max_age_s": DEMO_FLUSH_AGE_S}
        )
    return settings.model_copy(update=update)


def demo(
    events: int = typer.Option(50_000, help="Clickstream events to send over REST."),
    iot_events: int = typer.Option(5_000, help="IoT readings to send over gRPC."),
    bad_share: float = typer.Option(0.05, help="Share of deliberately broken events."),
    seed: int = typer.Option(7, help="Seed of the generators."),
    days: int = typer.Option(
        DEMO_DAYS,
        min=1,
        help="Days of event time the events are spread over: today and the days before it, "
        "from midnight UTC (at most the collector's TRIBUTARY_COLLECTOR__MAX_PAST_SKEW_S, "
        "7 days by default).",
    ),
    settle_timeout: float = typer.Option(
        600, help="Seconds to wait for every event to reach the search store and the lake."
    ),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the figures, the problems and the verdict as one JSON document on stdout "
        "(the rest goes to stderr).",
    ),
) -> None:
    """Run the platform on this machine and reconcile every event sent, stage by stage."""
    # Every console writes to whatever sys.stdout is when it prints: stderr, with --json.
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        document = _run(events, iot_events, bad_share, seed, days, settle_timeout)
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if document["problems"]:
        raise typer.Exit(ExitCode.FAILED)


def event_window(days: int, now: datetime, max_past_skew_s: float) -> tuple[datetime, datetime]:
    """The event times of a demo over ``days`` days: midnight UTC ``days - 1`` days ago to now.

    Exit 2 when the collector would refuse the oldest of them.
    """
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    start = midnight - timedelta(days=days - 1)
    if now - start > timedelta(seconds=max_past_skew_s):
        console.print(
            f"[red]error:[/red] --days {days} reaches back to {start:%Y-%m-%d}, but the "
            f"collector refuses events older than {max_past_skew_s / 86400:g} days "
            "(TRIBUTARY_COLLECTOR__MAX_PAST_SKEW_S); ask for fewer days"
        )
        raise typer.Exit(ExitCode.USAGE)
    return start, now


def _run(
    events: int, iot_events: int, bad_share: float, seed: int, days: int, settle_timeout: float
) -> dict[str, Any]:
    """The demo; returns its JSON document (the human output is printed on the way)."""
    # Refused before anything starts; checked again when the events are made.
    event_window(days, datetime.now(UTC), PipelineSettings().collector.max_past_skew_s)
    stack = Stack(StackSettings())
    console.print(stack.folders())
    stack.up(report=console.print)
    work = Path(tempfile.mkdtemp(prefix="tributary-demo-"))
    key, key_hash = new_key()
    pipeline = Pipeline(_pipeline_settings(key_hash), work / "logs")
    reconciler = Reconciler(pipeline.settings)
    try:
        pipeline.start()
        console.print(
            f"stream processes running (logs in {work / 'logs'}): "
            f"collector {pipeline.collector_url} "
            f"(gRPC {pipeline.grpc_target}), enrichment API {pipeline.enrichment_url}, "
            "enricher, real-time loader, batch loader"
        )
        start, until = event_window(
            days, datetime.now(UTC), pipeline.settings.collector.max_past_skew_s
        )
        console.print(
            f"event times spread over {days} day{'s' if days > 1 else ''}: "
            f"{start:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
        )
        stats = _produce(
            pipeline, key, work, events, iot_events, bad_share, seed, start=start, until=until
        )
        title = ENGINE_TITLES[pipeline.settings.search.engine]
        with console.status(f"waiting for every event to reach {title} and the lake"):
            settled = reconciler.settle(settle_timeout, poll=2, exited=pipeline.exited)
        if settled.exited:
            console.print(
                f"[red]error:[/red] {', '.join(settled.exited)} exited; see {work / 'logs'}"
            )
        console.print(f"settled {settled.seconds:.1f} s after the last event was sent")
        times = [
            IngestTime(received, indexed)
            for received, indexed in (reconciler.ingest_times() if settled.result.settled else [])
        ]
    finally:
        pipeline.stop()
        reconciler.close()
    result = settled.result
    document = reconciliation_document(stats, result)
    document["latency"] = latency_summary(times)
    document["kpis"] = []
    _report(document, pipeline.settings)
    _report_latency(document["latency"])
    if document["problems"]:
        return document
    document["kpis"], failed = _curate(pipeline.settings, result.lake_dates)
    if failed:
        document["problems"].append(f"the curated chain failed for {', '.join(failed)}")
        document["verdict"] = "the curated chain failed"
        return document
    _dashboards(pipeline.settings)
    return document


def _produce(
    pipeline: Pipeline,
    key: str,
    work: Path,
    events: int,
    iot_events: int,
    bad: float,
    seed: int,
    *,
    start: datetime,
    until: datetime,
) -> dict[str, EmitterStats]:
    common = {"rate": None, "batch_size": 100, "api_key": key, "max_retries": 5}
    span = until - start
    devices = 20
    return {
        "clickstream (REST)": produce_events(
            "clickstream (REST)",
            ClickstreamSource(
                users=max(1, events // 20),
                seed=seed,
                bad_share=bad,
                start=start,
                until=until,
                sessions_per_s=ClickstreamSource.sessions_per_s_for(max(1, events), span),
            ),
            events,
            transport=TransportName.REST,
            url=pipeline.collector_url,
            grpc_target=None,
            spool=work / "clickstream.sqlite",
            gzip=True,
            **common,  # type: ignore[arg-type]
        ),
        "iot (gRPC)": produce_events(
            "iot (gRPC)",
            IoTSource(
                devices=devices,
                seed=seed,
                bad_share=bad,
                start=start,
                until=until,
                interval_s=IoTSource.interval_s_for(max(1, iot_events), devices, span),
            ),
            iot_events,
            transport=TransportName.GRPC,
            url=None,
            grpc_target=pipeline.grpc_target,
            spool=work / "iot.sqlite",
            gzip=None,
            **common,  # type: ignore[arg-type]
        ),
    }


@dataclass(frozen=True)
class IngestTime:
    """When the collector received an event and when the search store had it indexed."""

    received_at: datetime
    indexed_at: datetime

    @property
    def latency_s(self) -> float:
        return (self.indexed_at - self.received_at).total_seconds()


def _percentile(sorted_values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    rank = max(1, -(-len(sorted_values) * share // 1))
    return sorted_values[int(rank) - 1]


def latency_summary(times: Sequence[IngestTime]) -> dict[str, Any]:
    """The latency from the collector to the search index of the run's events, and more.

    The figures that tell what it measures: how fast the events came, how fast the stream
    drained them, and what the first events (which found no queue) took. Empty when no event
    was indexed.
    """
    if not times:
        return {}
    latencies = sorted(t.latency_s for t in times)
    by_arrival = sorted(times, key=lambda t: t.received_at)
    first = sorted(t.latency_s for t in by_arrival[:FIRST_ARRIVALS])
    received = by_arrival[-1].received_at - by_arrival[0].received_at
    drained = max(t.indexed_at for t in times) - by_arrival[0].received_at
    received_s, drained_s = received.total_seconds(), drained.total_seconds()
    return {
        "events": len(times),
        "p50_s": round(_percentile(latencies, 0.5), 3),
        "p95_s": round(_percentile(latencies, 0.95), 3),
        "max_s": round(latencies[-1], 3),
        "received_over_s": round(received_s, 1),
        "received_per_s": round(len(times) / received_s) if received_s > 0 else None,
        "indexed_within_s": round(drained_s, 1),
        "indexed_per_s": round(len(times) / drained_s) if drained_s > 0 else None,
        "first_events": len(first),
        "first_events_p50_s": round(_percentile(first, 0.5), 3),
    }


def backlogged(summary: Mapping[str, Any]) -> bool:
    """Whether the events queued up in Kafka.

    They did when the stream took longer to index them than the collector took to receive
    them, by more than twice what the first events took.
    """
    slack = 2 * summary["first_events_p50_s"]
    return bool(summary["indexed_within_s"] - summary["received_over_s"] > slack)


def latency_lines(summary: Mapping[str, Any]) -> list[str]:
    """What the demo says about its latency figures (empty without figures)."""
    if not summary:
        return []
    lines = [
        f"Latency from the collector to the search index, this run's {summary['events']} "
        f"events: p50 {summary['p50_s']:.1f} s, p95 {summary['p95_s']:.1f} s, "
        f"max {summary['max_s']:.1f} s."
    ]
    came, went = summary["received_per_s"], summary["indexed_per_s"]
    if came and went:
        rates = (
            f"The collector received them within {summary['received_over_s']:g} s ({came}/s); "
            f"the stream had indexed them all {summary['indexed_within_s']:g} s after the first "
            f"arrived ({went}/s)."
        )
        if backlogged(summary):
            lines.append(
                f"  {rates} Sent faster than the stream drains them, each event waited in "
                "Kafka behind those sent before it: these figures, and the Live operations "
                "latency chart (which rises with the time of arrival), measure the demo's own "
                "backlog draining, not what an event takes through a stream that keeps up "
                "with its load."
            )
        else:
            lines.append(f"  {rates} The stream kept up: no backlog built up.")
    lines.append(
        f"  For comparison, the first {summary['first_events']} events the collector received "
        f"(before a queue could form, on a stream just started): "
        f"p50 {summary['first_events_p50_s']:.1f} s."
    )
    return lines


def _report_latency(summary: Mapping[str, Any]) -> None:
    for line in latency_lines(summary):
        console.print(line)


ACCOUNTED = "every event is accounted for"
NOT_ACCOUNTED = "counts do not add up"


def reconciliation_document(
    producers: Mapping[str, ProducerFigures], result: Reconciliation
) -> dict[str, Any]:
    """The reconciliation as the demo reports it (and ``--json`` prints).

    The figures per stage, what each should be (the producers' figures, or an earlier
    stage's), every problem, and the verdict.
    """
    rejected: Counter[str] = Counter()
    for figures in producers.values():
        rejected.update(figures.rejected)
    enriched = result.ours(result.enriched)
    dead = result.ours(result.enriched_dead_letters)
    accepted = len(result.accepted)
    problems = [*result.problems(), *producer_problems(producers.values(), result)]
    return {
        "producers": {
            name: {
                "sent": f.sent,
                "accepted": f.accepted,
                "rejected": dict(sorted(f.rejected.items())),
            }
            for name, f in producers.items()
        },
        "figures": {
            "sent": sum(f.sent for f in producers.values()),
            "accepted": accepted,
            "collector_dead_letters": sum(result.collector_dead_letters.values()),
            "collector_dead_letters_by_reason": dict(sorted(result.collector_dead_letters.items())),
            "enriched": enriched,
            "enriched_dead_letters": dead,
            "enriched_dead_letters_by_reason": dict(
                sorted(result.enriched_dead_letter_reasons.items())
            ),
            "indexed_events": sum(result.indexed_events.values()),
            "indexed_dead_letters": sum(result.indexed_dead_letters.values()),
            "indexed_collector_dead_letters": sum(result.indexed_collector_dead_letters.values()),
            "loader_dead_letters": result.ours(result.loader_dead_letters),
            "lake_rows": sum(result.lake_rows.values()),
            "lake_objects": result.lake_objects,
        },
        "expected": {
            "accepted": sum(f.accepted for f in producers.values()),  # the collector said
            "collector_dead_letters": sum(rejected.values()),  # the collector said
            "collector_dead_letters_by_reason": dict(sorted(rejected.items())),
            "enriched_plus_dead_letters": accepted,
            "indexed_events": enriched,
            "indexed_dead_letters": dead,
            "indexed_collector_dead_letters": len(result.collector_dead_letter_ids),
            "loader_dead_letters": 0,
            "lake_rows": enriched,
        },
        "lake_dates": sorted(result.lake_dates),
        "problems": problems,
        "verdict": NOT_ACCOUNTED if problems else ACCOUNTED,
    }


def _report(document: dict[str, Any], settings: PipelineSettings) -> None:
    topics = settings.topics
    got, want = document["figures"], document["expected"]
    enriched, dead = got["enriched"], got["enriched_dead_letters"]
    store = ENGINE_TITLES[settings.search.engine]
    table = Table("stage", "events", "should be", title="Reconciliation by event_id")
    table.add_row("sent by the producers", str(got["sent"]), "")
    table.add_row(
        f"accepted → {topics.raw}", str(got["accepted"]), f"{want['accepted']} (collector said)"
    )
    table.add_row(
        f"collector dead letters → {topics.collector_dlq}",
        str(got["collector_dead_letters"]),
        f"{want['collector_dead_letters']} (collector said)",
    )
    told, found = want["collector_dead_letters_by_reason"], got["collector_dead_letters_by_reason"]
    for reason in sorted(set(told) | set(found)):
        table.add_row(f"  {reason}", str(found.get(reason, 0)), str(told.get(reason, 0)))
    table.add_row(f"enriched → {topics.enriched}", str(enriched), "")
    table.add_row(f"enricher dead letters → {topics.enriched_dlq}", str(dead), "")
    for reason, count in got["enriched_dead_letters_by_reason"].items():
        table.add_row(f"  {reason}", str(count), "")
    table.add_row(
        "  enriched + dead letters",
        str(enriched + dead),
        f"{want['enriched_plus_dead_letters']} (accepted)",
    )
    table.add_row(
        f"indexed in {store}: events",
        str(got["indexed_events"]),
        f"{want['indexed_events']} (enriched)",
    )
    table.add_row(
        f"indexed in {store}: enricher dead letters",
        str(got["indexed_dead_letters"]),
        f"{want['indexed_dead_letters']} (enricher dead letters)",
    )
    table.add_row(
        f"indexed in {store}: collector dead letters",
        str(got["indexed_collector_dead_letters"]),
        f"{want['indexed_collector_dead_letters']} (collector dead letters)",
    )
    table.add_row(
        f"loader dead letters → {topics.loader_dlq}",
        str(got["loader_dead_letters"]),
        str(want["loader_dead_letters"]),
    )
    table.add_row(
        f"rows in the lake ({got['lake_objects']} Parquet objects)",
        str(got["lake_rows"]),
        f"{want['lake_rows']} (enriched)",
    )
    console.print(table, width=max(console.width, 110))  # whole topic names, even in a log
    for problem in document["problems"]:
        console.print(f"[red]  {problem}[/]")
    colour = "red" if document["problems"] else "green"
    console.print(f"[{colour}]{document['verdict']}[/]")


def _curate(settings: PipelineSettings, days: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Materialise the curated lake and the reporting views for the demo's event dates.

    The runs go to the UI's Dagster instance; the KPI summary is then read back through the
    profile's query engine (Trino over the REST catalog, as the dashboards read it).
    """
    # Preview/beta notices of Dagster and dagster-iceberg, pyiceberg's "delete matched no
    # records" on a first write, polars' scan-planner hint: none is for the demo's reader.
    warnings.simplefilter("ignore")
    import dagster as dg

    from platform_assets.reporting.engines import Engine, run_query
    from platform_assets.runs import materialize_days, materialize_reporting_views

    home = instance_home()
    instance = dg.DagsterInstance.get()
    with console.status(f"materialising the curated lake for {', '.join(sorted(days))}"):
        results = materialize_days(settings, days, instance)
    failed = [day for day, r in results.items() if not r.success]
    if not failed:
        with console.status("creating the reporting views"):
            views = materialize_reporting_views(settings, instance)
        if not views.success:
            failed.append("the reporting views")
    engine = Engine.default(settings)
    table = Table(
        "event date",
        "checks",
        "sessions",
        "conversion",
        "orders",
        "revenue (EUR)",
        "new users",
        title=f"Curated lake (Iceberg, Dagster), read through {engine}",
    )
    dates = ", ".join(f"date '{day}'" for day in sorted(results))
    kpis = run_query(
        settings,
        "select k.date, k.sessions, k.conversion_overall, k.orders, k.revenue_eur, u.new_users "
        "from reporting.daily_kpis k left join reporting.user_mix u on u.date = k.date "
        f"where k.date in ({dates})",
        engine,
    )
    by_day = {str(row[0]): row for row in kpis.rows}
    figures = []
    for day, result in results.items():
        evaluations = result.get_asset_check_evaluations()
        passed = sum(e.passed for e in evaluations)
        row = by_day.get(day, (day, *["-"] * 5))
        table.add_row(day, f"{passed}/{len(evaluations)} passed", *(str(v) for v in row[1:]))
        values = [_plain(v) for v in row[1:]] if day in by_day else [None] * 5
        figures.append(
            {"date": day, "checks_passed": passed, "checks": len(evaluations)}
            | dict(zip(KPI_NAMES, values, strict=True))
        )
    console.print(table)
    console.print(
        f"Dagster UI: 'make dagster' (DAGSTER_HOME={home}) serves the lineage graph, these runs "
        "and their checks at http://127.0.0.1:3000"
    )
    catalogs = [settings.trino.iceberg_catalog]
    if settings.search.read_by_trino:
        catalogs.append(settings.trino.opensearch_catalog)
    console.print(
        f"Trino: {settings.trino.url} (catalogs {', '.join(catalogs)}); query the lake with "
        "'TRIBUTARY_LAKE__CATALOG=rest uv run tributary query \"select * from "
        "reporting.daily_kpis\"'"
    )
    console.print(
        "Servers keep running: 'uv run tributary stack status' shows them, "
        "'uv run tributary stack down' stops them."
    )
    if failed:
        console.print(f"[red]the curated chain failed for {', '.join(failed)}[/]")
    return figures, failed


KPI_NAMES = ("sessions", "conversion", "orders", "revenue_eur", "new_users")


def _plain(value: object) -> object:
    """A figure as JSON has it (Trino's decimals as numbers)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return float(value)
    return str(value)


def _dashboards(settings: PlatformSettings) -> None:
    """Where the dashboards are, and how to log in."""
    ss = settings.superset
    if ss.secret("admin_password") == LOCAL_SUPERSET_ADMIN_PASSWORD:
        password = f"password '{LOCAL_SUPERSET_ADMIN_PASSWORD}' (the local default)"
    else:
        password = "the password in TRIBUTARY_SUPERSET__ADMIN_PASSWORD"
    console.print(f"Superset dashboards (log in as '{ss.admin_username}' with {password}):")
    bundle = BundleAssets.read()
    live = {bundle.dashboards[slug] for slug in bundle.live}
    for title, url in dashboard_urls(settings).items():
        if title in live and not settings.search.read_by_trino:
            console.print(
                f"  {title}: skipped: its live views read the real-time indices through "
                "Trino, which reads them from OpenSearch only (Trino's Elasticsearch "
                "connector needs a full Elasticsearch deployment, not the stack's minimal "
                "one; docs/stack.md)"
            )
            continue
        console.print(f"  {title}: {url}")
