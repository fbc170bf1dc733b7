"""``tributary keys new``: make an API key for a producer."""

from __future__ import annotations

import json

import typer

from ingestion.core.auth import new_key
from ingestion.core.config import WRITE_SCOPE

app = typer.Typer(help="API keys of the collector.")


@app.command("new")
def new(producer: str = typer.Argument(..., help="Name of the producer the key is for.")) -> None:
    """Print a new key (give it to the producer) and its entry for the collector's settings."""
    key, digest = new_key()
    entry = {"producer": producer, "sha256": digest, "scopes": [WRITE_SCOPE]}
    typer.echo(f"key (shown once): {key}")
    typer.echo("add to TRIBUTARY_COLLECTOR__API_KEYS (a JSON list):")
    typer.echo(json.dumps(entry))
