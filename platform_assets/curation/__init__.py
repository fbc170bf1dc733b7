"""The curation logic of the lake assets as pure polars functions (see ``docs/curation.md``).

One partition (an event date) in, frames and metadata figures out; no Dagster, no I/O:

- ``payloads``: each event type's payload checks, derived from its JSON Schema;
- ``validate.validate_events``: pandera envelope + payload checks, quarantine with reasons;
- ``dedupe.deduplicate``: one row per ``event_id``, deterministic winner, lookback;
- ``sessions.sessionise``: 30-minute sessions, user key, device/bot/country attributes;
- ``marts``: ``stg_events``, the shop's marts and ``agg_daily_kpis``, the IoT mart;
- ``checks``: asset-check functions returning ``CheckOutcome``;
- ``pipeline``: the chain's steps in their one order; ``curate_partition`` runs them in one
  process, as the assets do;
- ``synthetic``: generated raw-zone rows for tests and benchmarks.
"""
