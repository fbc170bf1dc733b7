"""Erasure as a Dagster job: launched from the UI (or GraphQL), seen in the run history.

``forget_person`` runs ``privacy.forget`` (search store, raw zone, curated lake, audit) under
the run's id as the request id; on its success ``recompute_after_erasure`` requests the
``daily_marts`` job for each event date the erasure touched (read back from the audit), so
the aggregates no longer count the person. The request's identity value is in the run's
config, so Dagster's run storage holds it; ``tributary forget`` does not write it anywhere
(docs/privacy.md).
"""

# No ``from __future__ import annotations``: Dagster reads the op's config annotation.
from collections.abc import Iterator

import dagster as dg

from platform_assets.assets.lake.curated import daily_marts_job
from privacy.forget import forget, recorded_dates
from resources.lake import make_catalog
from resources.settings import PlatformSettings


class ErasureRequest(dg.Config):
    identity_field: str = "user_id"
    value: str
    requested_by: str


def erasure_definitions(
    settings: PlatformSettings,
) -> tuple[dg.JobDefinition, dg.RunStatusSensorDefinition]:
    """The erasure job, and the sensor that recomputes the marts after it."""

    @dg.op(tags={"tributary/privacy": "erasure"})
    def erase_person(context: dg.OpExecutionContext, config: ErasureRequest) -> None:
        """Erase the person; the audit records the dates whose marts the sensor recomputes."""
        erasure = forget(
            settings,
            config.identity_field,
            config.value,
            config.requested_by,
            request_id=context.run_id,
            progress=lambda stage: context.log.info(f"erasing from the {stage}"),
        )
        for line in erasure.lines():
            context.log.info(line)
        context.log.info(f"subject sha256 {erasure.subject.digest}")

    @dg.job(
        name="forget_person",
        description="Erase a person (context.<identity_field> = value) from the search store, "
        "the raw zone and the curated lake, and record it in privacy.erasures.",
        tags={"tributary/privacy": "erasure"},
    )
    def forget_person() -> None:
        erase_person()

    @dg.run_status_sensor(
        name="recompute_after_erasure",
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[forget_person],
        request_job=daily_marts_job,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Rebuilds the marts of the dates an erasure touched.",
    )
    def recompute_after_erasure(context: dg.RunStatusSensorContext) -> Iterator[dg.RunRequest]:
        run_id = context.dagster_run.run_id
        for day in recorded_dates(make_catalog(settings), run_id):
            yield dg.RunRequest(
                run_key=f"erasure-{run_id}-{day.isoformat()}",
                partition_key=day.isoformat(),
                tags={"tributary/erasure": run_id},
            )

    return forget_person, recompute_after_erasure
