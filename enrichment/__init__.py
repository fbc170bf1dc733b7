"""Enrichment API: user agent, IP geolocation, currency normalisation and a bot score per event."""

__version__ = "1.0.0"

# The compact answer of ``POST /v1/enrich`` (asked for with ``Accept``): one ``Enrichment``
# JSON object per line, in the order of the request's events, and the model's version in a
# header. The enricher reads it, so that it can splice each line into its record unparsed.
NDJSON = "application/x-ndjson"
MODEL_VERSION_HEADER = "tributary-model-version"
