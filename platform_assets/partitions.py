"""The one partitioning of the curated lake: a day of event time (UTC).

It matches the raw zone's ``event_date=`` folders, and Airflow's daily logical date: the
partition key ``2026-11-28`` covers the data interval ``[2026-11-28T00:00Z, 2026-11-29T00:00Z)``.
``end_offset=1`` makes today's partition exist while its events still arrive.
"""

from __future__ import annotations

import dagster as dg

FIRST_DAY = "2026-01-01"

daily = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, timezone="UTC", end_offset=1)
