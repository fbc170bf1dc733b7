"""Further enrichment: sessions (30-minute inactivity gap), user and device attributes.

**Who.** Events are grouped by a ``user_key`` taken from the event's context: ``u:<user_id>``
when the user is logged in, else ``d:<device_id>``, else ``a:<session_id>`` (the client's
anonymous session id), else ``e:<event_id>`` (an event that names nobody is its own actor).

**Sessions.** Per ``user_key``, ordered by ``event_timestamp`` (ties by ``event_id``), a new
session starts at the first event and after every gap of *more than* ``gap`` (30 minutes: a
gap of exactly 30 minutes continues the session). The session id is
``<user_key>#<start in epoch milliseconds>``: it depends only on the data, so re-running a
partition gives the same ids, and a session that started in the previous partition keeps the
id it has there when that partition's rows are passed as ``lookback`` (sessions crossing
midnight). Only the clickstream vendors (``SESSION_VENDORS``) are sessionised; other events
(IoT readings, logs) get a ``user_key`` but no session.

**Attributes.** Every event gets ``device_class`` (the user agent's class, ``other`` when
unknown), ``is_bot`` (the user agent says bot, or the bot model's ``bot_probability`` is at
least ``BOT_THRESHOLD``) and ``country_code``; ``marts.dim_users`` summarises them per
``user_key`` (first/last seen, latest country and device class, bot).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from contract.envelope import EVENT_KEY_PREFIX, USER_KEY_PREFIXES
from platform_assets.curation.raw import ENGINE, SHOP_VENDOR, as_lazy, collect, decode_json

SESSION_GAP = timedelta(minutes=30)
SESSION_VENDORS = (SHOP_VENDOR,)
BOT_THRESHOLD = 0.5
CONTEXT_FIELDS = pl.Struct({"user_id": pl.String, "device_id": pl.String, "session_id": pl.String})

SESSION_COLUMNS = pl.Schema(
    {
        "user_id": pl.String(),
        "device_id": pl.String(),
        "client_session_id": pl.String(),
        "user_key": pl.String(),
        "session_id": pl.String(),
        "session_started_at": pl.Datetime("us", "UTC"),
        "session_event_number": pl.UInt32(),
        "device_class": pl.String(),
        "is_bot": pl.Boolean(),
        "country_code": pl.String(),
    }
)
"""The columns ``sessionise`` adds to the events."""

_ROW = "_row"


@dataclass
class SessionStats:
    events: int
    sessionised_events: int
    sessions: int
    sessions_started: int
    """Sessions whose first event lies in the partition."""
    sessions_continued: int
    """Sessions that started in the lookback (e.g. before midnight) and go on here."""
    user_keys: int
    bot_events: int

    def as_metadata(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class SessionResult:
    events: pl.DataFrame
    """The input rows, in input order, with ``SESSION_COLUMNS`` added."""
    stats: SessionStats


def _context(frame: pl.DataFrame) -> pl.DataFrame:
    decoded, _ = decode_json(frame.get_column("context"), CONTEXT_FIELDS)
    # A context whose known keys are not strings names nobody (it still gets an event key).
    return decoded.struct.unnest().rename({"session_id": "client_session_id"})


def user_key_expr() -> pl.Expr:
    """``u:<user_id>``, else ``d:<device_id>``, else ``a:<session_id>``, else ``e:<event_id>``."""
    p = USER_KEY_PREFIXES
    return pl.coalesce(
        pl.concat_str([pl.lit(p["user_id"]), pl.col("user_id")]),
        pl.concat_str([pl.lit(p["device_id"]), pl.col("device_id")]),
        pl.concat_str([pl.lit(p["session_id"]), pl.col("client_session_id")]),
        pl.concat_str([pl.lit(EVENT_KEY_PREFIX), pl.col("event_id")]),
    )


def _actors(frame: pl.DataFrame) -> pl.DataFrame:
    """``event_id``, ``event_timestamp``, the context ids and ``user_key`` of ``frame``."""
    ids = _context(frame.select("context"))
    keyed = pl.concat(
        [frame.select("event_id", "event_timestamp", "event_vendor"), ids], how="horizontal"
    )
    return keyed.with_columns(user_key=user_key_expr())


def _sessions(keys: pl.LazyFrame, gap: timedelta) -> pl.LazyFrame:
    """Session start and event number per row of ``keys`` (any order).

    Rows are grouped by a categorical code of ``user_key`` (exact, and sorting integers is
    several times faster than sorting the strings) and ordered by event time; ties keep the
    input order. ``_boundary`` marks the first row of each (actor, session) run.
    """
    ts = pl.col("event_timestamp")
    code = pl.col("_code")
    new = (code != code.shift(1)).fill_null(True) | ((ts - ts.shift(1)) > gap).fill_null(True)
    position = pl.int_range(pl.len(), dtype=pl.UInt32)
    return (
        keys.with_columns(_code=pl.col("user_key").cast(pl.Categorical).to_physical())
        .sort("_code", "event_timestamp", maintain_order=True)
        .with_columns(_new=new)
        .with_columns(
            session_started_at=pl.when("_new").then(ts).forward_fill(),
            _first=pl.when("_new").then(position).forward_fill(),
        )
        .with_columns(session_event_number=position - pl.col("_first") + 1)
        .with_columns(
            session_id=pl.format(
                "{}#{}",
                "user_key",
                pl.col("session_started_at").dt.epoch("ms").cast(pl.String),
            )
        )
    )


def _runs(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Mark the first row of each session among the rows left (still in session order)."""
    start = pl.col("session_started_at")
    return frame.with_columns(
        _boundary=(pl.col("_code") != pl.col("_code").shift(1)).fill_null(True)
        | (start != start.shift(1)).fill_null(True)
    )


def sessionise(
    events: pl.DataFrame | pl.LazyFrame,
    lookback: pl.DataFrame | pl.LazyFrame | None = None,
    *,
    gap: timedelta = SESSION_GAP,
    vendors: tuple[str, ...] = SESSION_VENDORS,
) -> SessionResult:
    """Add sessions and user/device attributes to one partition's deduplicated events.

    Args:
        events: the partition's deduplicated rows (raw-zone columns).
        lookback: deduplicated rows of the previous partition (at least ``event_id``,
            ``event_timestamp``, ``event_vendor`` and ``context``), so that sessions running
            across the partition boundary keep their start and id; ``None`` for none.
        gap: the inactivity gap that ends a session.
        vendors: the event vendors that are sessionised.
    """
    frame = collect(events) if isinstance(events, pl.LazyFrame) else events
    actors = _actors(frame).with_row_index(_ROW)
    in_scope = pl.col("event_vendor").is_in(list(vendors))
    keys = actors.lazy().filter(in_scope).select(_ROW, "user_key", "event_timestamp", "event_id")
    parts = [keys]
    if lookback is not None:
        lb = as_lazy(lookback).select("event_id", "event_timestamp", "event_vendor", "context")
        lb = lb.filter(in_scope & (pl.col("event_timestamp") < frame["event_timestamp"].min()))
        lb_actors = _actors(collect(lb)).lazy()
        lb_keys = lb_actors.join(keys.select("user_key").unique(), on="user_key", how="semi")
        parts.append(
            lb_keys.select(
                pl.lit(None, pl.UInt32).alias(_ROW), "user_key", "event_timestamp", "event_id"
            )
        )
    sessions = (
        _sessions(pl.concat(parts), gap)
        .filter(pl.col(_ROW).is_not_null())
        .pipe(_runs)
        .select(_ROW, "session_id", "session_started_at", "session_event_number", "_boundary")
        .collect(engine=ENGINE)
    )
    n_sessions = int(sessions.get_column("_boundary").sum())
    started = int((sessions.get_column("session_event_number") == 1).sum())
    sessions = sessions.drop("_boundary")
    # Back to input order: row i takes the session row at where[i] (null: not sessionised).
    n = frame.height
    rows = sessions.get_column(_ROW).to_numpy()
    where = np.full(n, -1, dtype=np.int64)
    where[rows] = np.arange(len(rows))
    index = pl.Series(where).cast(pl.UInt32, strict=False).set(pl.Series(where < 0), None)
    session_cols = sessions.drop(_ROW).select(pl.all().gather(index))
    bot_score = pl.col("scores").map.get("bot_probability")
    attributes = frame.select(
        device_class=pl.col("ua_device_class").fill_null("other"),
        is_bot=(pl.col("ua_is_bot").fill_null(False) | (bot_score >= BOT_THRESHOLD)).fill_null(
            False
        ),
        country_code=pl.col("geo_country_code"),
    )
    out = pl.concat(
        [
            frame,
            actors.select("user_id", "device_id", "client_session_id", "user_key"),
            session_cols,
            attributes,
        ],
        how="horizontal",
    )
    stats = SessionStats(
        events=n,
        sessionised_events=len(rows),
        sessions=n_sessions,
        sessions_started=started,
        sessions_continued=n_sessions - started,
        user_keys=actors.select(
            pl.col("user_key").cast(pl.Categorical).to_physical().n_unique()
        ).item(),
        bot_events=int(out.get_column("is_bot").sum()),
    )
    return SessionResult(events=out, stats=stats)
