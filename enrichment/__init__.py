"""Enrichment API: user agent, IP geolocation, currency normalisation and a bot score per event."""

__version__ = "1.0.0"
