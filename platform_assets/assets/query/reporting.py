"""The reporting views, created in Trino by Dagster so that they sit in the lineage graph.

Each asset ``trino/reporting/<view>`` runs ``CREATE OR REPLACE VIEW`` for one view of
``platform_assets.reporting.views`` (stored as an Iceberg view in the lake's REST catalog,
schema ``reporting``), downstream of what it reads: the marts for the lake views, the search
indices for the live ones. A live view names the indices' aliases, which the stack's
provisioning and the real-time loader make (``resources.search_indices``), never an asset. A
view reads its tables at query time, so it needs re-creating only when its SQL changes, not
when data arrives: the assets are run by ``reporting_views_job`` (after deploying, or from
the UI), not by automation.
"""

import dagster as dg

from contract.search import DEADLETTERS, EVENTS
from platform_assets.assets.lake.curated import key as lake_key
from platform_assets.reporting.views import LAKE_VIEWS, LIVE_VIEWS, SCHEMA, ReportingView, trino_sql
from resources.dagster_resources import TrinoResource
from resources.settings import PlatformSettings

GROUP = "reporting"


def view_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["trino", SCHEMA, name])


def _live_families(view: ReportingView) -> list[str]:
    placeholders = {EVENTS: "{events}", DEADLETTERS: "{deadletters}"}
    return [family for family, text in placeholders.items() if view.live and text in view.sql]


def _view_asset(view: ReportingView, settings: PlatformSettings) -> dg.AssetsDefinition:
    sql = trino_sql(view, settings)
    name = f"{settings.trino.iceberg_catalog}.{SCHEMA}.{view.name}"
    families = _live_families(view)

    @dg.asset(
        key=view_key(view.name),
        deps=[lake_key("marts", m) for m in view.marts]
        + [dg.AssetKey([settings.search.engine.value, family]) for family in families],
        group_name=GROUP,
        kinds={"trino", "sql"},
        description=view.description,
        metadata={"view": name, "sql": dg.MetadataValue.md(f"```sql\n{sql}\n```")},
    )
    def reporting_view(context: dg.AssetExecutionContext, trino: TrinoResource) -> dg.Output[None]:
        catalog = settings.trino.iceberg_catalog
        trino.execute(f"create schema if not exists {catalog}.{SCHEMA}")
        trino.execute(sql)
        # Describing it proves the view resolves against the tables it names.
        columns = [(row[0], row[1]) for row in trino.execute(f"describe {name}").rows]
        context.log.info("view %s: %s", name, ", ".join(c for c, _ in columns))
        return dg.Output(
            None,
            metadata={
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(c, t) for c, t in columns]
                ),
            },
        )

    return reporting_view


def reporting_assets(settings: PlatformSettings) -> list[dg.AssetsDefinition]:
    """The lake's views, and the live ones when Trino can read the search store.

    Trino's ``opensearch`` connector reads OpenSearch; the minimal Elasticsearch distribution
    the local stack runs has no ``GET /`` for Trino's ``elasticsearch`` connector, so with
    Elasticsearch as the store the live views are left out (docs/stack.md).
    """
    views = (*LAKE_VIEWS, *LIVE_VIEWS) if settings.search.read_by_trino else LAKE_VIEWS
    return [_view_asset(view, settings) for view in views]


reporting_views_job = dg.define_asset_job(
    "reporting_views_job",
    selection=dg.AssetSelection.groups(GROUP),
    description="Create or replace every reporting view in Trino.",
)
