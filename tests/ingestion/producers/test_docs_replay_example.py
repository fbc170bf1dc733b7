"""The worked example of docs/ingestion.md, run as written: a file replayed as a new event type.

The schema, the CSV, the mapping and the resulting event are read from the document itself, so
the example cannot drift from what ``produce file --mapping`` does.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contract.envelope import EnvelopeRules, check_envelope
from contract.failures import FailureType
from contract.registry import SchemaKey, SchemaRegistry
from ingestion.producers.sources import FieldMapping, FileSource
from platform_assets.curation.payloads import payload_rules

pytestmark = pytest.mark.unit

DOC = Path(__file__).resolve().parents[3] / "docs" / "ingestion.md"
SECTION = "### Worked example"
SENT = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # the day the example's rows are replayed


def _section() -> str:
    text = DOC.read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start)
    return text[start : end if end != -1 else len(text)]


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", _section(), re.S)


def _json_block(key: str) -> dict[str, Any]:
    """The one JSON block of the example that has ``key`` at its top level."""
    found = [b for b in map(json.loads, _blocks("json")) if key in b]
    assert len(found) == 1, f"expected one JSON block with '{key}' in {DOC.name}"
    block: dict[str, Any] = found[0]
    return block


@pytest.fixture
def example(tmp_path: Path) -> dict[str, Any]:
    """The example's files written as the document says, and its registry."""
    schema = _json_block("self")
    [relative] = set(re.findall(r"contract/schemas/[\w./-]+\.json", _section()))
    schema_file = tmp_path / relative
    schema_file.parent.mkdir(parents=True)
    schema_file.write_text(json.dumps(schema))
    [data] = _blocks("csv")
    csv_file = tmp_path / "trips.csv"
    csv_file.write_text(data)
    assert "produce file trips.csv --mapping bike_trip.json" in _section()
    return {
        "schema": schema,
        "registry": SchemaRegistry.from_directory(tmp_path / "contract" / "schemas"),
        "csv": csv_file,
        "mapping": FieldMapping.model_validate(_json_block("timestamp")),
        "event": _json_block("event_id"),
    }


def test_the_documented_schema_registers_and_passes_the_schema_rules(
    example: dict[str, Any],
) -> None:
    schema, registry = example["schema"], example["registry"]
    key = SchemaKey.parse(schema["$id"])
    assert key in registry and str(key.version) == "1-0-0"
    # The rules tests/contract applies to every shipped schema.
    assert schema["additionalProperties"] is False
    compiled = registry.get(key)
    assert schema["examples"] and all(compiled.is_valid(e) for e in schema["examples"])
    # Curation can type and check its payloads.
    rules = payload_rules(key, schema)
    assert set(rules.fields.to_schema()) == set(schema["properties"])


def test_the_documented_mapping_turns_the_rows_into_the_documented_events(
    example: dict[str, Any],
) -> None:
    events = list(FileSource(example["csv"], example["mapping"]))
    assert len(events) == 2
    assert events[0] == example["event"]
    assert "distance_km" not in events[1]["payload"], "the empty cell is left out"
    registry = example["registry"]
    for event in events:
        check = check_envelope(event, registry, EnvelopeRules(), now=SENT)
        assert check.ok, check.errors
        compiled = registry.lookup(event["event_type"])
        assert compiled is not None and compiled.errors(event["payload"]) == []


def test_the_replay_is_deterministic_and_the_skew_applies(example: dict[str, Any]) -> None:
    first = list(FileSource(example["csv"], example["mapping"]))
    again = list(FileSource(example["csv"], example["mapping"]))
    assert [e["event_id"] for e in first] == [e["event_id"] for e in again]
    # Sent more than 7 days later, the rows are refused unless the skew is raised.
    late = SENT + timedelta(days=30)
    refused = check_envelope(first[0], example["registry"], EnvelopeRules(), now=late)
    assert refused.failure_type is FailureType.ENVELOPE_VIOLATION
    year = EnvelopeRules(max_past_skew=timedelta(seconds=31536000))
    assert check_envelope(first[0], example["registry"], year, now=late).ok


def test_an_unregistered_type_is_refused_as_unknown_schema(example: dict[str, Any]) -> None:
    """Without the new schema (a collector not restarted), the events are unknown_schema."""
    [event] = list(FileSource(example["csv"], example["mapping"]))[:1]
    check = check_envelope(event, SchemaRegistry.from_directory(), EnvelopeRules(), now=SENT)
    assert check.failure_type is FailureType.UNKNOWN_SCHEMA
