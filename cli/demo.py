"""``tributary demo``: the platform end to end on this machine, as far as it is built.

1. start the local servers (Kafka, SeaweedFS, the search store: OpenSearch, or Elasticsearch
   with ``TRIBUTARY_SEARCH__ENGINE=elasticsearch``, Trino, Superset), topics and buckets;
2. start the stream processes: enrichment API, enricher, real-time loader, batch loader and
   the collector (with a fresh API key);
3. push synthetic clickstream events over REST and IoT readings over gRPC, a share of them
   deliberately broken (some refused by the collector, some by the enricher's schemas);
4. wait until every accepted event has reached each of its destinations, then print the
   reconciliation by ``event_id``: sent, accepted, collector dead letters by reason, enriched,
   enriched dead letters by reason, documents in the search store, rows in the lake;
5. curate the lake for the event dates written and print the day's KPIs read back.

With ``--json`` the figures, what each should be, the problems, the KPIs and the verdict are
one JSON document on stdout (:func:`reconciliation_document`); the rest goes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.dagster import INSTANCE_YAML
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
    local_folder,
)
from simulator.events import ClickstreamSource, IoTSource
from stack.config import StackSettings
from stack.dashboards import BundleAssets, dashboard_urls
from stack.manager import Stack
from streaming.reconcile import ProducerFigures, Reconciler, Reconciliation, producer_problems

console = Console(highlight=False, soft_wrap=True)

# The Dagster instance the demo's runs go to, and `make dagster` serves.
DAGSTER_HOME = local_folder("dagster")

# Unless configured otherwise, the demo's batch loader flushes within seconds, not a minute.
DEMO_FLUSH_AGE_S = 5.0


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
        document = _run(events, iot_events, bad_share, seed, settle_timeout)
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    if document["problems"]:
        raise typer.Exit(ExitCode.FAILED)


def _run(
    events: int, iot_events: int, bad_share: float, seed: int, settle_timeout: float
) -> dict[str, Any]:
    """The demo; returns its JSON document (the human output is printed on the way)."""
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
        stats = _produce(pipeline, key, work, events, iot_events, bad_share, seed)
        title = ENGINE_TITLES[pipeline.settings.search.engine]
        with console.status(f"waiting for every event to reach {title} and the lake"):
            settled = reconciler.settle(settle_timeout, poll=2, exited=pipeline.exited)
        if settled.exited:
            console.print(
                f"[red]error:[/red] {', '.join(settled.exited)} exited; see {work / 'logs'}"
            )
        console.print(f"settled {settled.seconds:.1f} s after the last event was sent")
    finally:
        pipeline.stop()
        reconciler.close()
    result = settled.result
    document = reconciliation_document(stats, result)
    document["kpis"] = []
    _report(document, pipeline.settings)
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
    pipeline: Pipeline, key: str, work: Path, events: int, iot_events: int, bad: float, seed: int
) -> dict[str, EmitterStats]:
    common = {"rate": None, "batch_size": 100, "api_key": key, "max_retries": 5}
    return {
        "clickstream (REST)": produce_events(
            "clickstream (REST)",
            ClickstreamSource(users=max(1, events // 20), seed=seed, bad_share=bad),
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
            IoTSource(devices=20, seed=seed, bad_share=bad),
            iot_events,
            transport=TransportName.GRPC,
            url=None,
            grpc_target=pipeline.grpc_target,
            spool=work / "iot.sqlite",
            gzip=None,
            **common,  # type: ignore[arg-type]
        ),
    }


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
        f"indexed in {store}: dead letters",
        str(got["indexed_dead_letters"]),
        f"{want['indexed_dead_letters']} (dead letters)",
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

    home = Path(os.environ.setdefault("DAGSTER_HOME", str(DAGSTER_HOME.resolve())))
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists() or not instance_yaml.read_text().strip():
        instance_yaml.write_text(INSTANCE_YAML)
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
