"""``tributary forget --user-id ID``: erase a person from every store, audit it, recompute."""

from __future__ import annotations

import getpass
import json
from typing import Annotated

import typer
from rich.console import Console

from cli.errors import CommandError, ExitCode
from resources.settings import PlatformSettings

console = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def forget(
    user_id: Annotated[
        str | None, typer.Option("--user-id", help="Erase the events of this user id.")
    ] = None,
    field: Annotated[
        str | None,
        typer.Option(
            "--field",
            help="Another identity field of the events' context "
            "(TRIBUTARY_PRIVACY__IDENTITY_FIELDS), with --value.",
        ),
    ] = None,
    value: Annotated[str | None, typer.Option("--value", help="The value of --field.")] = None,
    requested_by: Annotated[
        str | None,
        typer.Option(
            "--requested-by", help="Who asked (recorded in the audit); default: this OS user."
        ),
    ] = None,
    recompute: Annotated[
        bool,
        typer.Option(
            help="Re-materialise the marts of the dates touched, in this process, so the "
            "aggregates no longer count the person."
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Erase a person: search store, raw zone and curated lake; record it in the audit table.

    The person's events are found by `context.<field>` (and its pseudonyms when pseudonyms
    are on). Kafka keeps them until the topics' retention, which the output states. Running
    it again removes nothing more and says so. Exit code 0 when something was removed or had
    already been erased, 1 when nothing was ever found for the person.
    """
    from privacy.forget import forget as erase

    if (user_id is None) == (field is None):
        raise CommandError("give --user-id, or --field with --value", ExitCode.USAGE)
    identity_field, identity = ("user_id", user_id) if user_id is not None else (field, value)
    if identity_field is None or not identity:
        raise CommandError("--field needs --value", ExitCode.USAGE)
    settings = PlatformSettings()
    try:
        erasure = erase(
            settings,
            identity_field,
            identity,
            requested_by or getpass.getuser(),
            progress=None if as_json else (lambda stage: err.print(f"erasing from the {stage}")),
        )
    except ValueError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from exc
    recomputed: list[str] = []
    if recompute and erasure.affected_dates:
        recomputed = _recompute(settings, [d.isoformat() for d in erasure.affected_dates])
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "request_id": erasure.request_id,
                    "requested_at": erasure.requested_at.isoformat(),
                    "requested_by": erasure.requested_by,
                    "identity_field": identity_field,
                    "subject_sha256": erasure.subject.digest,
                    "removed": erasure.removed,
                    "removals": [
                        {"store": r.store, "location": r.location, "removed": r.removed}
                        for r in erasure.removals
                    ],
                    "earlier_requests": [rid for rid, _ in erasure.earlier],
                    "recomputed_dates": recomputed,
                    "seconds": erasure.seconds,
                    "kafka_retention_days": erasure.kafka_retention,
                }
            )
        )
    else:
        for line in erasure.lines():
            console.print(line)
    if not erasure.removed and not erasure.earlier:
        raise typer.Exit(ExitCode.FAILED)


def _recompute(settings: PlatformSettings, days: list[str]) -> list[str]:
    """Materialise the marts of ``days`` on the UI's Dagster instance; return the dates done."""
    import warnings

    # Preview notices of Dagster and dagster-iceberg, polars' scan-planner hint: not for the
    # operator (the demo silences the same).
    warnings.simplefilter("ignore")
    import dagster as dg

    from cli.dagster import instance_home
    from platform_assets.runs import materialize_marts

    instance_home()
    results = materialize_marts(settings, days, dg.DagsterInstance.get())
    failed = [day for day, result in results.items() if not result.success]
    if failed:
        raise CommandError(f"the marts of {', '.join(failed)} did not re-materialise")
    return sorted(results)
