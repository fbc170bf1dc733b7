"""The enrichment API's wire format, as the enricher reads it.

``POST /v1/enrich`` takes ``{"events": [...]}`` (raw records, as the raw topic holds them) and,
asked with ``Accept: application/x-ndjson``, answers with one ``contract.records.Enrichment``
JSON object per line, in the order of the request's events, and the model's version in a
header. The enricher splices each line into its record unparsed, so neither side re-encodes
an event.
"""

from __future__ import annotations

NDJSON = "application/x-ndjson"
"""The media type of the compact answer (asked for with ``Accept``)."""

MODEL_VERSION_HEADER = "tributary-model-version"
"""The response header that carries the version of the model that scored the batch."""
