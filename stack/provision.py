"""Create the platform's topics, buckets and search aliases on the configured servers.

Run by ``tributary stack up`` once the local servers are healthy, and on its own
(``python -m stack.provision``) against servers run elsewhere (compose, production);
``python -m stack.provision dashboards`` imports the dashboards bundle into the configured
Superset (``stack/dashboards.py``), as ``tributary stack provision`` does for the local one.
"""

from __future__ import annotations

import argparse
import logging
from datetime import UTC, datetime

import httpx
from botocore.exceptions import ClientError, EndpointConnectionError
from confluent_kafka import KafkaException

from resources.kafka import make_kafka_admin
from resources.s3 import ensure_buckets
from resources.search import SearchError, SearchUnavailable, make_search_store
from resources.search_indices import IndexLayout, provision_indices
from resources.settings import MissingSetting, PlatformSettings, SearchEngine
from resources.superset import SupersetError
from resources.topics import TopicReport, ensure_topics, platform_topics
from stack.dashboards import provision_dashboards

log = logging.getLogger(__name__)


class ProvisionError(RuntimeError):
    """A server refused to be provisioned; the message says which and why."""


def provision_kafka(settings: PlatformSettings) -> TopicReport:
    admin = make_kafka_admin(settings.kafka)
    try:
        return ensure_topics(admin, platform_topics(settings.topics, settings.kafka))
    except KafkaException as exc:
        raise ProvisionError(
            f"Kafka at {settings.kafka.bootstrap_servers} refused the topics: {exc}"
        ) from exc


def provision_s3(settings: PlatformSettings) -> list[str]:
    try:
        return ensure_buckets(settings.s3)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied"):
            raise ProvisionError(
                f"S3 at {settings.s3.endpoint_url} refused the credentials ({code}); check "
                "TRIBUTARY_S3__ACCESS_KEY_ID and TRIBUTARY_S3__SECRET_ACCESS_KEY"
            ) from exc
        raise ProvisionError(f"S3 at {settings.s3.endpoint_url} answered {code}: {exc}") from exc
    except EndpointConnectionError as exc:
        raise ProvisionError(f"S3 at {settings.s3.endpoint_url} is unreachable: {exc}") from exc
    except RuntimeError as exc:  # the warehouse exists as a plain bucket
        raise ProvisionError(str(exc)) from exc


def provision_search(settings: PlatformSettings, engine: SearchEngine | None = None) -> list[str]:
    """Give every index family its alias, with today's (UTC) empty index; return those made.

    On the search engine in use, or on ``engine`` (the stack provisions each server it runs).

    Readers name the aliases (the live reporting views, Trino's search catalog) before the
    real-time loader has written anything. Templates the loader already put are kept.
    """
    search = settings.search if engine is None else settings.search.using(engine)
    with make_search_store(search) as store:
        try:
            return provision_indices(
                store, IndexLayout(prefix=store.index_prefix), datetime.now(UTC).date()
            )
        except SearchUnavailable as exc:
            raise ProvisionError(f"{store.title} at {store.url} is unavailable: {exc}") from exc
        except SearchError as exc:
            raise ProvisionError(
                f"{store.title} at {store.url} refused the index templates or aliases "
                f"({exc.status}): {exc}"
            ) from exc


def provision_superset(settings: PlatformSettings) -> dict[str, int]:
    """Import the dashboards bundle into the configured Superset; count the assets by kind."""
    url = settings.superset.url
    try:
        assets = provision_dashboards(settings)
    except MissingSetting as exc:
        raise ProvisionError(f"the dashboards need Superset's admin: {exc}") from exc
    except SupersetError as exc:
        raise ProvisionError(f"Superset at {url} refused the dashboards: {exc}") from exc
    except httpx.HTTPError as exc:
        raise ProvisionError(f"Superset at {url} is unreachable: {exc}") from exc
    return {kind: len(uuids) for kind, uuids in assets.uuids.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m stack.provision",
        description="Provision the configured servers (TRIBUTARY_* settings).",
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=("servers", "dashboards"),
        default="servers",
        help="servers: topics, buckets, search aliases (default); dashboards: Superset's",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = PlatformSettings()
    if args.what == "dashboards":
        log.info("dashboards imported %s", provision_superset(settings))
        return
    report = provision_kafka(settings)
    log.info("topics created %s, altered %s", report.created, report.altered)
    log.info("buckets created %s", provision_s3(settings))
    log.info("search indices created %s", provision_search(settings))


if __name__ == "__main__":
    main()
