"""``tributary demo``: the platform end to end on this machine, as far as it is built.

1. start the local servers (Kafka, SeaweedFS, OpenSearch), topics and buckets;
2. start the stream processes: enrichment API, enricher, real-time loader, batch loader and
   the collector (with a fresh API key);
3. push synthetic clickstream events over REST and IoT readings over gRPC, a share of them
   deliberately broken (some refused by the collector, some by the enricher's schemas);
4. wait until every accepted event has reached each of its destinations, then print the
   reconciliation by ``event_id``: sent, accepted, collector dead letters by reason, enriched,
   enriched dead letters by reason, documents in OpenSearch, rows in the lake.
"""

from __future__ import annotations

import os
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.dagster import INSTANCE_YAML
from cli.processes import Pipeline, PipelineSettings
from cli.produce import TransportName, produce_events
from ingestion.core.auth import new_key
from ingestion.core.config import ApiKey
from ingestion.producers.emitter import EmitterStats
from resources.settings import LOCAL_SUPERSET_ADMIN_PASSWORD, LakeCatalog, PlatformSettings
from simulator.events import ClickstreamSource, IoTSource
from stack.config import StackSettings
from stack.dashboards import dashboard_urls
from stack.errors import StackError
from stack.manager import Stack
from stack.provision import ProvisionError
from streaming.reconcile import Reconciler, Reconciliation

console = Console(highlight=False, soft_wrap=True)

# The Dagster instance the demo's runs go to, and `make dagster` serves.
DAGSTER_HOME = Path(".tributary/dagster")

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
) -> None:
    """Run the platform on this machine and reconcile every event sent, stage by stage."""
    try:
        Stack(StackSettings()).up(report=console.print)
    except (StackError, ProvisionError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc

    work = Path(tempfile.mkdtemp(prefix="tributary-demo-"))
    key, key_hash = new_key()
    pipeline = Pipeline(_pipeline_settings(key_hash), work / "logs")
    reconciler = Reconciler(pipeline.settings)
    try:
        try:
            pipeline.start()
        except StackError as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        console.print(
            f"stream processes running (logs in {work / 'logs'}): "
            f"collector {pipeline.collector_url} "
            f"(gRPC {pipeline.grpc_target}), enrichment API {pipeline.enrichment_url}, "
            "enricher, real-time loader, batch loader"
        )
        stats = _produce(pipeline, key, work, events, iot_events, bad_share, seed)
        started = time.monotonic()
        with console.status("waiting for every event to reach OpenSearch and the lake"):
            result = reconciler.collect()
            while not result.settled and time.monotonic() - started < settle_timeout:
                if dead := [p.name for p in pipeline if not p.running()]:
                    console.print(
                        f"[red]error:[/red] {', '.join(dead)} exited; see {work / 'logs'}"
                    )
                    break
                time.sleep(2)
                result = reconciler.collect()
        console.print(f"settled {time.monotonic() - started:.1f} s after the last event was sent")
    finally:
        pipeline.stop()
        reconciler.close()
    _report(stats, result, pipeline.settings)
    _curate(pipeline.settings, result.lake_dates)
    _dashboards(pipeline.settings)


def _produce(
    pipeline: Pipeline, key: str, work: Path, events: int, iot_events: int, bad: float, seed: int
) -> list[EmitterStats]:
    common = {"rate": None, "batch_size": 100, "api_key": key, "max_retries": 5}
    return [
        produce_events(
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
        produce_events(
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
    ]


def _report(stats: list[EmitterStats], result: Reconciliation, settings: PipelineSettings) -> None:
    topics = settings.topics
    sent = sum(s.sent for s in stats)
    told_accepted = sum(s.accepted for s in stats)
    told_rejected = sum(s.rejected_total for s in stats)
    accepted = len(result.accepted)
    enriched = result.ours(result.enriched)
    dead = result.ours(result.enriched_dead_letters)
    collector_dead = sum(result.collector_dead_letters.values())
    indexed = sum(result.indexed_events.values())
    indexed_dead = sum(result.indexed_dead_letters.values())
    lake = sum(result.lake_rows.values())

    table = Table("stage", "events", "should be", title="Reconciliation by event_id")
    table.add_row("sent by the producers", str(sent), "")
    table.add_row(f"accepted → {topics.raw}", str(accepted), f"{told_accepted} (collector said)")
    table.add_row(
        f"collector dead letters → {topics.collector_dlq}",
        str(collector_dead),
        f"{told_rejected} (collector said)",
    )
    rejected = Counter[str]()
    for s in stats:
        rejected.update(s.rejected)
    for reason in sorted(set(rejected) | set(result.collector_dead_letters)):
        table.add_row(
            f"  {reason}", str(result.collector_dead_letters[reason]), str(rejected[reason])
        )
    table.add_row(f"enriched → {topics.enriched}", str(enriched), "")
    table.add_row(f"enricher dead letters → {topics.enriched_dlq}", str(dead), "")
    for reason, count in sorted(result.enriched_dead_letter_reasons.items()):
        table.add_row(f"  {reason}", str(count), "")
    table.add_row("  enriched + dead letters", str(enriched + dead), f"{accepted} (accepted)")
    table.add_row("indexed in OpenSearch: events", str(indexed), f"{enriched} (enriched)")
    table.add_row(
        "indexed in OpenSearch: dead letters", str(indexed_dead), f"{dead} (dead letters)"
    )
    table.add_row(
        f"loader dead letters → {topics.loader_dlq}",
        str(result.ours(result.loader_dead_letters)),
        "0",
    )
    table.add_row(
        f"rows in the lake ({result.lake_objects} Parquet objects)",
        str(lake),
        f"{enriched} (enriched)",
    )
    console.print(table, width=max(console.width, 110))  # whole topic names, even in a log
    problems = result.problems()
    if told_accepted != accepted:
        problems.append(
            f"the collector acknowledged {told_accepted}, the raw topic holds {accepted}"
        )
    if rejected != result.collector_dead_letters:
        problems.append("the collector's dead letters differ from what the producers were told")
    if accepted + collector_dead != sent:
        problems.append(f"{sent} sent, but {accepted + collector_dead} accepted or dead-lettered")
    for problem in problems:
        console.print(f"[red]  {problem}[/]")
    verdict = "[green]every event is accounted for" if not problems else "[red]counts do not add up"
    console.print(f"{verdict}[/]")
    if problems:
        raise typer.Exit(1)


def _curate(settings: PipelineSettings, days: set[str]) -> None:
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
    for day, result in results.items():
        evaluations = result.get_asset_check_evaluations()
        passed = sum(e.passed for e in evaluations)
        row = by_day.get(day, (day, *["-"] * 5))
        table.add_row(day, f"{passed}/{len(evaluations)} passed", *(str(v) for v in row[1:]))
    console.print(table)
    console.print(
        f"Dagster UI: 'make dagster' (DAGSTER_HOME={home}) serves the lineage graph, these runs "
        "and their checks at http://127.0.0.1:3000"
    )
    console.print(
        f"Trino: {settings.trino.url} (catalogs {settings.trino.iceberg_catalog}, "
        f"{settings.trino.opensearch_catalog}); query the lake with "
        "'TRIBUTARY_LAKE__CATALOG=rest uv run tributary query \"select * from "
        "reporting.daily_kpis\"'"
    )
    console.print(
        "Servers keep running: 'uv run tributary stack status' shows them, "
        "'uv run tributary stack down' stops them."
    )
    if failed:
        console.print(f"[red]the curated chain failed for {', '.join(failed)}[/]")
        raise typer.Exit(1)


def _dashboards(settings: PlatformSettings) -> None:
    """Where the dashboards are, and how to log in."""
    ss = settings.superset
    if ss.secret("admin_password") == LOCAL_SUPERSET_ADMIN_PASSWORD:
        password = f"password '{LOCAL_SUPERSET_ADMIN_PASSWORD}' (the local default)"
    else:
        password = "the password in TRIBUTARY_SUPERSET__ADMIN_PASSWORD"
    console.print(f"Superset dashboards (log in as '{ss.admin_username}' with {password}):")
    for title, url in dashboard_urls(settings).items():
        console.print(f"  {title}: {url}")
