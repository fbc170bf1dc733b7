"""The curation logic of the lake assets as pure polars functions (see ``docs/curation.md``).

One partition (an event date) in, frames and metadata figures out; no Dagster, no I/O:

- ``validate.validate_events``: pandera envelope + payload checks, quarantine with reasons;
- ``dedupe.deduplicate``: one row per ``event_id``, deterministic winner, lookback;
- ``sessions.sessionise``: 30-minute sessions, user key, device/bot/country attributes;
- ``marts``: ``stg_events`` and the marts, ``agg_daily_kpis``;
- ``checks``: asset-check functions returning ``CheckOutcome``;
- ``pipeline.curate_partition``: the chain in one process;
- ``synthetic``: generated raw-zone rows for tests and benchmarks.
"""
