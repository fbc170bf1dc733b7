"""The search store behind one seam: OpenSearch or Elasticsearch 8, free of Dagster.

Every part of the platform that talks to the search store (the real-time loader, the index
provisioning, reconciliation, the alert sensor, the dead-letter asset, the tests) goes
through :class:`SearchStore`; nothing else imports ``opensearchpy`` or ``elasticsearch``.
The store offers what the platform uses: index templates, indices and aliases, bulk writes
with per-item results, refresh, search, count and aggregations, delete by query, and the
cluster's health. Errors come out normalised:

- :class:`SearchUnavailable`: worth retrying (no connection, a timeout, 429 or 5xx);
- :class:`SearchRejected`: refused for good (a 4xx), with :class:`AlreadyExists` and
  :class:`NotFound` for the two a caller often expects.

The two clients share their API shape (opensearch-py was forked from elasticsearch-py 7), so
one store serves both; an :class:`_Engine` says how to connect and how to read its errors.
Elasticsearch's client is pinned to 8.x: the 9.x client refuses an 8.x server.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from resources.settings import SearchConnection, SearchEngine, SearchSettings

ENGINE_TITLES = {SearchEngine.OPENSEARCH: "OpenSearch", SearchEngine.ELASTICSEARCH: "Elasticsearch"}

# Ids per delete request of delete_where; one page of the scan.
_DELETE_PAGE = 1000


class SearchError(RuntimeError):
    """The search store failed a request; ``status`` is its HTTP status when it answered."""

    def __init__(self, message: str, status: int | None = None, kind: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


class SearchUnavailable(SearchError):
    """Transient: the store is unreachable, timed out, or answered 429 or 5xx."""


class SearchRejected(SearchError):
    """Permanent: the store refused the request (4xx)."""


class AlreadyExists(SearchRejected):
    """The index (or other resource) exists already."""


class NotFound(SearchRejected):
    """The index (or other resource) does not exist."""


@dataclass(frozen=True)
class BulkItem:
    """The result of one action of a bulk request."""

    status: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status < 300

    @property
    def transient(self) -> bool:
        return self.status == 429 or self.status >= 500


def item_error(error: Any) -> str:
    """One line for a bulk item's (or a response's) ``error``: type, reason and cause."""
    if not isinstance(error, dict):
        return str(error)
    text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
    cause = error.get("caused_by")
    if isinstance(cause, dict):
        text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
    return text


class _Engine:
    """How one client library connects and reports errors."""

    engine: SearchEngine

    def connect(self, conn: SearchConnection) -> Any:
        raise NotImplementedError

    def classify(self, exc: Exception) -> SearchError | None:
        """The normalised error for a client exception, or None when it is not the client's."""
        raise NotImplementedError


def index_body(documents: Iterable[tuple[str, str, Mapping[str, Any] | bytes]]) -> bytes:
    """A bulk request's NDJSON indexing ``(index, _id, source)`` each, serialised with orjson.

    A source given as bytes is sent as it is (already JSON).
    """
    lines = []
    for index, doc_id, source in documents:
        lines.append(orjson.dumps({"index": {"_index": index, "_id": doc_id}}))
        lines.append(source if isinstance(source, bytes) else orjson.dumps(source))
    lines.append(b"")
    return b"\n".join(lines)


def _basic_auth(conn: SearchConnection) -> tuple[str, str] | None:
    if conn.username and conn.password:
        return conn.username, conn.password.get_secret_value()
    return None


def _body(answer: Any) -> Any:
    """A response's JSON: opensearch-py answers it, elasticsearch-py wraps it in ``.body``."""
    return getattr(answer, "body", answer)


def _normalised(status: int | None, kind: str, message: str) -> SearchError:
    if status is None:
        return SearchUnavailable(message)
    if status == 429 or status >= 500:
        return SearchUnavailable(message, status, kind)
    if kind == "resource_already_exists_exception":
        return AlreadyExists(message, status, kind)
    if status == 404:
        return NotFound(message, status, kind)
    return SearchRejected(message, status, kind)


class _OpenSearch(_Engine):
    engine = SearchEngine.OPENSEARCH

    def connect(self, conn: SearchConnection) -> Any:
        from opensearchpy import OpenSearch

        return OpenSearch(
            hosts=[conn.url],
            http_auth=_basic_auth(conn),
            verify_certs=conn.verify_certs,
            ca_certs=str(conn.ca_certs) if conn.ca_certs else None,
            timeout=30,
            retry_on_timeout=True,
            max_retries=3,
        )

    def classify(self, exc: Exception) -> SearchError | None:
        import opensearchpy

        if isinstance(exc, opensearchpy.ConnectionError):  # also ConnectionTimeout
            return SearchUnavailable(f"OpenSearch is unreachable: {exc.error}")
        if isinstance(exc, opensearchpy.TransportError):
            status = exc.status_code if isinstance(exc.status_code, int) else None
            kind = str(exc.error)
            return _normalised(status, kind, f"OpenSearch answered {exc.status_code}: {exc}")
        return None


class _Elasticsearch(_Engine):
    engine = SearchEngine.ELASTICSEARCH

    def connect(self, conn: SearchConnection) -> Any:
        from elasticsearch import Elasticsearch

        tls: dict[str, Any] = {"ca_certs": str(conn.ca_certs)} if conn.ca_certs else {}
        return Elasticsearch(
            conn.url,
            basic_auth=_basic_auth(conn),
            verify_certs=conn.verify_certs,
            request_timeout=30,
            retry_on_timeout=True,
            max_retries=3,
            **tls,
        )

    def classify(self, exc: Exception) -> SearchError | None:
        import elasticsearch

        if isinstance(exc, elasticsearch.ApiError):
            return _normalised(
                exc.status_code, str(exc.error), f"Elasticsearch answered {exc.status_code}: {exc}"
            )
        if isinstance(exc, elasticsearch.TransportError):  # connection, timeout, TLS
            return SearchUnavailable(f"Elasticsearch is unreachable: {exc}")
        return None


ENGINES: dict[SearchEngine, _Engine] = {e.engine: e for e in (_OpenSearch(), _Elasticsearch())}

# Index-pattern reads that find nothing answer empty, not 404.
_LENIENT = {"ignore_unavailable": True, "allow_no_indices": True}


class SearchStore:
    """The platform's operations on the search store, on either engine."""

    def __init__(self, settings: SearchSettings, client: Any = None) -> None:
        self.settings = settings
        self.engine = settings.engine
        self.connection = settings.connection
        self._engine = ENGINES[self.engine]
        self.client = client if client is not None else self._engine.connect(self.connection)

    @property
    def title(self) -> str:
        """The engine's name, as people write it."""
        return ENGINE_TITLES[self.engine]

    @property
    def url(self) -> str:
        return self.connection.url

    @property
    def index_prefix(self) -> str:
        return self.settings.index_prefix

    def __repr__(self) -> str:
        return f"SearchStore({self.title} at {self.url})"

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            normalised = self._engine.classify(exc)
            if normalised is None:
                raise
            raise normalised from exc

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> SearchStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the cluster ------------------------------------------------------------------

    def health(self) -> str | None:
        """The cluster's status (green, yellow, red), or None when it does not answer.

        ``/_cluster/health``, not ``GET /``: the minimal Elasticsearch distribution does not
        serve the root endpoint, so the clients' ``ping()`` is False there.
        """
        try:
            with self._errors():
                return str(self.client.cluster.health()["status"])
        except SearchError:
            return None

    # -- templates, indices, aliases --------------------------------------------------

    def put_template(self, name: str, body: dict[str, Any]) -> None:
        """Create or replace the composable index template ``name``."""
        with self._errors():
            self.client.indices.put_index_template(name=name, body=body)

    def delete_template(self, name: str) -> bool:
        """Delete the composable index template ``name``; False when it was not there."""
        try:
            with self._errors():
                self.client.indices.delete_index_template(name=name)
        except NotFound:
            return False
        return True

    def template_exists(self, name: str) -> bool:
        with self._errors():
            return bool(self.client.indices.exists_index_template(name=name))

    def indices(self, pattern: str, closed: bool = False) -> list[str]:
        """The names of the indices matching ``pattern`` (open ones, or all), sorted.

        A pattern nothing matches, or a name that does not exist, gives an empty list.
        """
        try:
            with self._errors():
                found = self.client.indices.get(
                    index=pattern,
                    allow_no_indices=True,
                    expand_wildcards="all" if closed else "open",
                )
        except NotFound:
            return []
        return sorted(_body(found))

    def create_index(self, name: str, body: dict[str, Any] | None = None) -> bool:
        """Create ``name`` (from the templates that match it); False when it exists already."""
        try:
            with self._errors():
                self.client.indices.create(index=name, body=body)
        except AlreadyExists:
            return False
        return True

    def delete_index(self, name: str) -> bool:
        """Delete ``name``; False when it was not there."""
        try:
            with self._errors():
                self.client.indices.delete(index=name)
        except NotFound:
            return False
        return True

    def put_meta(self, pattern: str, meta: dict[str, Any]) -> None:
        """Set the mapping's ``_meta`` of the indices matching ``pattern``."""
        with self._errors():
            self.client.indices.put_mapping(index=pattern, body={"_meta": meta})

    def mapping(self, index: str) -> dict[str, Any]:
        """The mapping of each index matching ``index``, by index name."""
        with self._errors():
            answer = self.client.indices.get_mapping(index=index)
        return {name: m["mappings"] for name, m in _body(answer).items()}

    def index_settings(self, index: str) -> dict[str, Any]:
        """The ``index`` settings of each index matching ``index``, by index name."""
        with self._errors():
            answer = self.client.indices.get_settings(index=index)
        return {name: s["settings"]["index"] for name, s in _body(answer).items()}

    def alias_exists(self, alias: str) -> bool:
        with self._errors():
            return bool(self.client.indices.exists_alias(name=alias))

    def put_alias(self, pattern: str, alias: str) -> None:
        with self._errors():
            self.client.indices.put_alias(index=pattern, name=alias)

    # -- documents ----------------------------------------------------------------------

    def bulk(self, body: bytes) -> list[BulkItem]:
        """Send one bulk request (NDJSON); return each action's result, in order."""
        with self._errors():
            # Only what is read below comes back (the full answer repeats every id).
            answer = self.client.bulk(body=body, filter_path="errors,items.*.status,items.*.error")
        items = []
        for item in answer["items"]:
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            error = result.get("error")
            items.append(BulkItem(status, item_error(error) if error is not None else None))
        return items

    def refresh(self, pattern: str) -> None:
        """Make what was written to the indices of ``pattern`` searchable now."""
        with self._errors():
            self.client.indices.refresh(index=pattern, **_LENIENT)

    def search(self, pattern: str, body: dict[str, Any]) -> dict[str, Any]:
        """Search the indices of ``pattern`` (none matching is an empty answer).

        Everything of the request in ``body`` (``size`` too): elasticsearch-py 8 deprecates
        mixing a body with keyword parameters.
        """
        with self._errors():
            return dict(_body(self.client.search(index=pattern, body=body, **_LENIENT)))

    def count(self, pattern: str, query: dict[str, Any] | None = None) -> int:
        """Count the documents of ``pattern`` matching ``query`` (all without one)."""
        body = {"query": query} if query is not None else None
        with self._errors():
            return int(self.client.count(index=pattern, body=body, **_LENIENT)["count"])

    def get(self, index: str, doc_id: str) -> dict[str, Any] | None:
        """The ``_source`` of a document, or None when there is none with that id."""
        try:
            with self._errors():
                return dict(_body(self.client.get(index=index, id=doc_id))["_source"])
        except NotFound:
            return None

    def delete_where(self, pattern: str, query: dict[str, Any]) -> int:
        """Delete the documents of ``pattern`` matching ``query``; return how many.

        By pages of ids and bulk deletes, not ``_delete_by_query``, which the minimal
        Elasticsearch distribution lacks. The indices are refreshed first and after, so a
        document written just before is found and a search just after no longer sees it.
        """
        self.refresh(pattern)
        deleted = 0
        while True:
            answer = self.search(pattern, {"query": query, "_source": False, "size": _DELETE_PAGE})
            hits = answer["hits"]["hits"]
            if not hits:
                break
            lines = [
                orjson.dumps({"delete": {"_index": hit["_index"], "_id": hit["_id"]}})
                for hit in hits
            ]
            items = self.bulk(b"\n".join([*lines, b""]))
            failed = [i for i in items if not i.ok and i.status != 404]
            if failed:
                raise SearchRejected(f"delete refused: {failed[0].error}", failed[0].status)
            deleted += sum(1 for i in items if i.ok)
            self.refresh(pattern)
        return deleted


def make_search_store(settings: SearchSettings) -> SearchStore:
    """Return a store for the configured engine and endpoint."""
    return SearchStore(settings)


__all__ = [
    "AlreadyExists",
    "BulkItem",
    "NotFound",
    "SearchError",
    "SearchRejected",
    "SearchStore",
    "SearchUnavailable",
    "index_body",
    "item_error",
    "make_search_store",
]
