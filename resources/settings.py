"""The one source of connection settings for every Tributary process.

Every process (collector, workers, Dagster code location, the stack command) builds one
``PlatformSettings`` at start-up from the environment (prefix ``TRIBUTARY_``, nested fields
separated by ``__``, e.g. ``TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS``) and passes it down. Nothing
reads the environment at import time.
"""

from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.jsontext import DEFAULT_MAX_DEPTH, MAX_DEPTH_CEILING

# Secrets that only the ``local`` profile may run with. Outside it they are refused.
LOCAL_S3_ACCESS_KEY = "tributary"
LOCAL_S3_SECRET_KEY = "tributary-local-secret"
LOCAL_SUPERSET_ADMIN_PASSWORD = "tributary-local-admin"
LOCAL_SUPERSET_SECRET_KEY = "tributary-local-superset-secret-key"
LOCAL_PSEUDONYM_KEY = "tributary-local-pseudonym-key"

# A key version names one pseudonym key; it is part of every pseudonym (``ps:<version>:...``).
KEY_VERSION_PATTERN = r"^[a-z0-9]{1,16}$"
# An event type's personal payload fields: ``vendor/name`` (every version), ``vendor/name/
# M-R-A`` or ``iglu:vendor/name/jsonschema/M-R-A`` (that version only).
_EVENT_TYPE_SELECTOR = re.compile(
    r"^(?:iglu:)?(?P<vendor>[a-zA-Z0-9_.-]+)/(?P<name>[a-zA-Z0-9_-]+)"
    r"(?:/(?:jsonschema/)?(?P<version>[1-9][0-9]*-[0-9]+-[0-9]+))?$"
)
LOCAL_POSTGRES_PASSWORD = "tributary-local-postgres"
LOCAL_POSTGRES_REPLICATION_PASSWORD = "tributary-local-cdc"


def project_root() -> Path:
    """The checkout this package runs from: the folder holding its ``pyproject.toml``.

    Found from the package's own location, not the current directory, so that a command run
    from anywhere uses the same ``.tributary/`` folder. A copy installed without its
    checkout falls back to the current directory.
    """
    here = Path(__file__).resolve().parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return Path.cwd()


def local_folder(*parts: str) -> Path:
    """A folder under the project's ``.tributary/``: state, lake, spool, Dagster home."""
    return project_root().joinpath(".tributary", *parts)


class Profile(enum.StrEnum):
    """Where the lake, catalog and query engine live."""

    LOCAL = "local"
    """Embedded: lake on the filesystem, Iceberg catalog in SQLite, DuckDB for queries."""
    STACK = "stack"
    """Full stack: SeaweedFS S3, the Iceberg REST catalog, Trino."""


class KafkaSettings(BaseModel):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    security_protocol: str = Field("PLAINTEXT", description="PLAINTEXT, SSL, SASL_SSL, ...")
    sasl_mechanism: str | None = Field(None, description="For example SCRAM-SHA-512.")
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    replication_factor: int = Field(
        1, ge=1, description="Replication factor of the platform's topics (3 in production)."
    )
    min_insync_replicas: int = Field(1, ge=1, description="min.insync.replicas of the topics.")
    partitions: int = Field(6, ge=1, description="Partitions of each event topic.")
    # Every topic holds personal data (events and their dead letters carry the context and
    # the client IP): these say how long Kafka keeps it. `tributary forget` cannot shorten it.
    events_retention_days: float = Field(
        7, gt=0, description="retention.ms of the raw and enriched topics, in days."
    )
    dead_letter_retention_days: float = Field(
        30, gt=0, description="retention.ms of the dead-letter topics, in days."
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _host_port_list(cls, value: str) -> str:
        """Refuse what librdkafka would only log about: no broker, or one without a port."""
        brokers = [b.strip() for b in value.split(",") if b.strip()]
        if not brokers:
            raise ValueError("name at least one broker as host:port")
        for broker in brokers:
            host, _, port = broker.rpartition("://")[2].rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"'{broker}' is not host:port with a port from 1 to 65535")
        return value

    def client_config(self) -> dict[str, str]:
        """Return the librdkafka settings shared by producers, consumers and admins."""
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        return config


class TopicNames(BaseModel):
    raw: str = Field("tributary.events.raw", description="Events accepted by the collector.")
    collector_dlq: str = Field(
        "tributary.events.raw.dlq", description="Events the collector rejected, with reasons."
    )
    enriched: str = Field("tributary.events.enriched", description="Validated, enriched events.")
    enriched_dlq: str = Field(
        "tributary.events.enriched.dlq",
        description="Events that failed schema validation or enrichment.",
    )
    loader_dlq: str = Field(
        "tributary.events.loader.dlq", description="Documents the search store rejected."
    )
    cdc_prefix: str = Field(
        "tributary.cdc",
        description="Prefix of the change topics: `<prefix>.<database>.<schema>.<table>`.",
    )
    connect_configs: str = Field(
        "tributary.connect.configs", description="Kafka Connect's connector configurations."
    )
    connect_offsets: str = Field(
        "tributary.connect.offsets", description="Kafka Connect's source offsets (the LSNs)."
    )
    connect_status: str = Field(
        "tributary.connect.status", description="Kafka Connect's connector and task states."
    )

    def cdc_topic_prefix(self, database: str) -> str:
        """Debezium's ``topic.prefix`` for ``database``: its change topics start with it."""
        return f"{self.cdc_prefix}.{database}"

    def change_topic(self, database: str, table: str, schema: str = "public") -> str:
        """The topic Debezium writes the changes of ``schema.table`` in ``database`` to."""
        return f"{self.cdc_topic_prefix(database)}.{schema}.{table}"


class S3Settings(BaseModel):
    endpoint_url: str = Field("http://127.0.0.1:8333", description="S3 API endpoint.")
    region: str = "us-east-1"
    access_key_id: str = LOCAL_S3_ACCESS_KEY
    secret_access_key: SecretStr = SecretStr(LOCAL_S3_SECRET_KEY)
    raw_bucket: str = Field("tributary-raw", description="Bucket of the raw Parquet zone.")
    raw_prefix: str = Field(
        "events/", description="Key prefix of the raw zone's data in the raw bucket."
    )
    warehouse_bucket: str = Field("tributary-lake", description="Bucket of the Iceberg tables.")
    iceberg_catalog_uri: str = Field(
        "http://127.0.0.1:8181", description="Iceberg REST catalog (served by SeaweedFS)."
    )


class SearchEngine(enum.StrEnum):
    """The search store's server: both speak the same REST API for what the platform does."""

    OPENSEARCH = "opensearch"
    """The default: the live dashboards read it through Trino's ``opensearch`` catalog."""
    ELASTICSEARCH = "elasticsearch"
    """Elasticsearch 8.x, through the ``elasticsearch`` client (pinned below 9)."""


class SearchConnection(BaseModel):
    """Where one search server answers, and how to authenticate to it."""

    url: str = Field(description="HTTP(S) endpoint, e.g. http://127.0.0.1:9200.")
    username: str | None = Field(None, description="Basic-auth user, when security is on.")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    ca_certs: Path | None = Field(None, description="CA bundle that signed the server's TLS.")
    verify_certs: bool = Field(True, description="Verify the server's TLS certificate.")


class OpenSearchConnection(SearchConnection):
    url: str = Field("http://127.0.0.1:9200", description="OpenSearch's HTTP endpoint.")


class ElasticsearchConnection(SearchConnection):
    url: str = Field(
        "http://127.0.0.1:9201",
        description="Elasticsearch's HTTP endpoint (9201 locally, beside OpenSearch's 9200).",
    )


class SearchSettings(BaseModel):
    """The search store: which engine, and the connection of each (``TRIBUTARY_SEARCH__*``).

    Each engine has its own connection (``TRIBUTARY_SEARCH__ELASTICSEARCH__URL``), so both
    servers can run side by side; ``engine`` says which one the platform writes to and reads.
    """

    engine: SearchEngine = Field(SearchEngine.OPENSEARCH, description="opensearch | elasticsearch")
    index_prefix: str = Field("tributary", description="Prefix of the platform's indices.")
    opensearch: OpenSearchConnection = OpenSearchConnection()
    elasticsearch: ElasticsearchConnection = ElasticsearchConnection()

    @property
    def connection(self) -> SearchConnection:
        """The connection of the engine in use."""
        return self.opensearch if self.engine is SearchEngine.OPENSEARCH else self.elasticsearch

    @property
    def read_by_trino(self) -> bool:
        """Whether Trino reads the store in use, so that the live views and dashboards work.

        Trino's ``opensearch`` connector reads OpenSearch. Its ``elasticsearch`` connector
        (and Superset's Elasticsearch driver) need ``GET /`` and ``_sql``, which the minimal
        Elasticsearch distribution of the local stack lacks: a full Elasticsearch deployment
        would serve them (docs/stack.md), but that is not what the stack runs.
        """
        return self.engine is SearchEngine.OPENSEARCH

    def using(self, engine: SearchEngine | str) -> SearchSettings:
        """These settings with ``engine`` in use."""
        return self.model_copy(update={"engine": SearchEngine(engine)})


class LegacyOpenSearchSettings(BaseModel):
    """``TRIBUTARY_OPENSEARCH__*``, the names before the search seam: read into ``search``."""

    url: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    verify_certs: bool | None = None
    index_prefix: str | None = None


class TrinoSettings(BaseModel):
    url: str = Field(
        "http://127.0.0.1:8080", description="Trino coordinator (HTTP API and web UI)."
    )
    user: str = Field("tributary", description="User that queries run as.")
    password: SecretStr | None = Field(
        None, description="Password, for a Trino with authentication (HTTPS only)."
    )
    iceberg_catalog: str = Field("iceberg", description="Catalog of the curated lake.")
    opensearch_catalog: str = Field("opensearch", description="Catalog of the real-time indices.")


class LakeCatalog(enum.StrEnum):
    """Where the curated lake's Iceberg catalog lives."""

    SQL = "sql"
    """pyiceberg's SQL catalog in SQLite, tables as files under ``lake.local_root``."""
    REST = "rest"
    """The Iceberg REST catalog SeaweedFS serves, tables in S3: the one Trino reads."""


class LakeSettings(BaseModel):
    catalog: LakeCatalog | None = Field(
        None,
        description="`sql` or `rest`; default `sql` in the `local` profile, `rest` in `stack`. "
        "The demo sets `rest` so that Trino and the dashboards read the lake it curates.",
    )
    local_root: Path = Field(
        default_factory=lambda: local_folder("lake"),
        description="Root of the lake and SQLite catalog (`sql`); default .tributary/lake in "
        "the project's folder.",
    )
    trigger_interval_s: int = Field(
        30,
        ge=1,
        description="Seconds between evaluations of the raw-zone sensor and of the curated "
        "chain's automation (the daemon's ticks).",
    )


class AlertSettings(BaseModel):
    window_minutes: float = Field(5, gt=0, description="Window of the real-time alert rates.")
    max_dead_letter_rate: float = Field(
        0.2, ge=0, le=1, description="Alert above this share of dead letters in the window."
    )
    webhook_url: str | None = Field(None, description="Where alerts are POSTed as JSON.")


class MissingSetting(ValueError):
    """A setting that has no default in this profile and was not set; the message names it."""


class SupersetSettings(BaseModel):
    url: str = Field("http://127.0.0.1:8088", description="Superset's web server.")
    admin_username: str = Field("admin", description="The admin account that provisions.")
    # No default outside `local`: only the processes that talk to Superset need them, so
    # they are checked where they are used (``secret``), not by every process's settings.
    admin_password: SecretStr | None = Field(
        None, description="Password of the admin account (`local` default otherwise unset)."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Superset's SECRET_KEY: signs sessions, encrypts stored connection secrets.",
    )

    def secret(self, name: Literal["admin_password", "secret_key"]) -> str:
        """Return the secret, or say which variable to set when it has none."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise MissingSetting(
                f"TRIBUTARY_SUPERSET__{name.upper()} is not set "
                "(it has a default only in the local profile)"
            )
        return value.get_secret_value()


def event_type_selector(selector: str) -> str:
    """The canonical form of a selector of ``PseudonymSettings.payload_fields``.

    ``vendor/name`` for every version of an event type, ``vendor/name/M-R-A`` for one version
    (``iglu:vendor/name/jsonschema/M-R-A`` is read as the latter).
    """
    m = _EVENT_TYPE_SELECTOR.match(selector)
    if m is None:
        raise ValueError(
            f"'{selector}' is not an event type: write vendor/name (every version) or "
            "vendor/name/M-R-A (one version), e.g. com.tributary.shop/purchase/1-0-0"
        )
    base = f"{m['vendor']}/{m['name']}"
    return f"{base}/{m['version']}" if m["version"] else base


def _check_pointer(pointer: str) -> str:
    """A JSON Pointer (RFC 6901) into the payload; ``*`` stands for every array item or member."""
    if not pointer.startswith("/") or pointer == "/":
        raise ValueError(f"'{pointer}' is not a JSON Pointer to a payload field (e.g. /email)")
    for part in pointer.split("/")[1:]:
        if re.search(r"~(?![01])", part):
            raise ValueError(f"'{pointer}': '~' must be escaped as ~0 ('/' as ~1)")
    return pointer


class PseudonymSettings(BaseModel):
    """Keyed pseudonyms of personal fields, made by the enricher (docs/privacy.md).

    ``TRIBUTARY_PRIVACY__PSEUDONYMS__*``. Each chosen value becomes
    ``ps:<key_version>:<HMAC-SHA256 of the value, hex>``.
    """

    enabled: bool = Field(False, description="Replace the fields below with pseudonyms.")
    key: SecretStr | None = Field(
        None,
        description="The HMAC key (at least 16 characters). No default outside the `local` "
        "profile: with pseudonyms on, a missing key there stops every process at start-up.",
    )
    key_version: str = Field(
        "1",
        pattern=KEY_VERSION_PATTERN,
        description="Name of `key` (1-16 lower-case letters or digits): stamped on every "
        "pseudonymised event and part of every pseudonym, so keys can rotate.",
    )
    retired_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description='Earlier keys by version, JSON ({"1": "..."}): no longer used to '
        "pseudonymise, still used to find a person's older events (`tributary forget`) and "
        "recognised as pseudonyms already made.",
    )
    client_ip: bool = Field(
        True,
        description="Pseudonymise the client's IP (`collector.client_ip`, `context.client_ip`, "
        "a collector dead letter's `metadata.client_ip`) after geo has been looked up.",
    )
    context_fields: list[str] = Field(
        default_factory=lambda: ["user_id"],
        description="Keys of `context` to pseudonymise in every event (and in the Kafka key "
        "`<name>:<id>` when it is one of them).",
    )
    payload_fields: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Payload fields to pseudonymise per event type, JSON: "
        '{"com.tributary.shop/purchase": ["/customer/email"]} (every version) or '
        '{"com.tributary.shop/purchase/1-0-0": [...]} (one version); JSON Pointers into the '
        "payload, `*` for every item of an array.",
    )

    @field_validator("retired_keys")
    @classmethod
    def _retired_versions(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for version, key in value.items():
            if not re.match(KEY_VERSION_PATTERN, version):
                raise ValueError(f"retired key version '{version}' is not 1-16 [a-z0-9]")
            if len(key.get_secret_value()) < 16:
                raise ValueError(f"retired key '{version}' is shorter than 16 characters")
        return value

    @field_validator("payload_fields")
    @classmethod
    def _selectors(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for selector, pointers in value.items():
            canonical = event_type_selector(selector)
            out[canonical] = [*out.get(canonical, []), *(_check_pointer(p) for p in pointers)]
        return out

    @model_validator(mode="after")
    def _key(self) -> Self:
        if self.key is not None and len(self.key.get_secret_value()) < 16:
            raise ValueError("TRIBUTARY_PRIVACY__PSEUDONYMS__KEY is shorter than 16 characters")
        if self.key_version in self.retired_keys:
            raise ValueError(f"key version '{self.key_version}' is also among the retired keys")
        return self

    def keys(self) -> dict[str, str]:
        """Every key by version: the current one first, then the retired ones.

        Raises:
            MissingSetting: there is no current key.
        """
        if self.key is None:
            raise MissingSetting("TRIBUTARY_PRIVACY__PSEUDONYMS__KEY is not set")
        return {
            self.key_version: self.key.get_secret_value(),
            **{v: k.get_secret_value() for v, k in self.retired_keys.items()},
        }


class PostgresSettings(BaseModel):
    """The shop's operational database (``TRIBUTARY_POSTGRES__*``), read by change capture."""

    host: str = Field("127.0.0.1", description="PostgreSQL's host.")
    port: int = Field(5432, ge=1, le=65535, description="PostgreSQL's port.")
    database: str = Field("shop", description="The shop's database.")
    user: str = Field("tributary", description="The role that owns the shop's database.")
    password: SecretStr | None = Field(
        None, description="Password of `user` (`local` default, otherwise unset)."
    )
    replication_user: str = Field(
        "tributary_cdc", description="The role change capture logs in as (REPLICATION)."
    )
    replication_password: SecretStr | None = Field(
        None, description="Password of `replication_user` (`local` default, otherwise unset)."
    )
    publication: str = Field(
        "tributary_shop", description="The publication of the tables whose changes are captured."
    )
    slot: str = Field("tributary_shop", description="The logical replication slot (pgoutput).")
    tables: list[str] = Field(
        default_factory=list,
        description="Captured tables as `schema.table` (Debezium's table.include.list); "
        "empty: every table of the publication in schema public.",
    )

    def secret(self, name: Literal["password", "replication_password"]) -> str:
        """Return the secret, or say which variable to set when it has none."""
        value: SecretStr | None = getattr(self, name)
        if value is None:
            raise MissingSetting(
                f"TRIBUTARY_POSTGRES__{name.upper()} is not set "
                "(it has a default only in the local profile)"
            )
        return value.get_secret_value()


class ConnectSettings(BaseModel):
    """The Kafka Connect worker running the change-capture connector (``TRIBUTARY_CONNECT__*``)."""

    url: str = Field("http://127.0.0.1:8083", description="Kafka Connect's REST API.")
    connector: str = Field(
        "shop-postgres", description="Name of the shop database's Debezium connector."
    )


class PrivacySettings(BaseModel):
    """Personal data: who a person is in the events, for erasure (``TRIBUTARY_PRIVACY__*``)."""

    identity_fields: list[str] = Field(
        default_factory=lambda: ["user_id"],
        min_length=1,
        description="Keys of an event's `context` that identify a person; `tributary forget` "
        "erases by any of them (`--user-id` is `user_id`).",
    )
    pseudonyms: PseudonymSettings = PseudonymSettings()


class PlatformSettings(BaseSettings):
    """Connection settings shared by every process of the platform."""

    model_config = SettingsConfigDict(
        env_prefix="TRIBUTARY_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    profile: Profile = Profile.LOCAL
    # At least 4: an enriched record nests that deep ({"enrichment": {"money": [{...}]}}).
    max_json_depth: int = Field(
        DEFAULT_MAX_DEPTH,
        ge=4,
        le=MAX_DEPTH_CEILING,
        description="How deeply an event's JSON may nest (a batch's array adds one); every "
        "stage refuses deeper JSON as malformed before parsing it (contract.jsontext).",
    )
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicNames = TopicNames()
    s3: S3Settings = S3Settings()
    search: SearchSettings = SearchSettings()
    opensearch: LegacyOpenSearchSettings | None = Field(
        None,
        exclude=True,
        description="Deprecated: TRIBUTARY_OPENSEARCH__URL and the other old names still "
        "configure search.opensearch (and the index prefix); the new names win.",
    )
    trino: TrinoSettings = TrinoSettings()
    lake: LakeSettings = LakeSettings()
    alerts: AlertSettings = AlertSettings()
    superset: SupersetSettings = SupersetSettings()
    privacy: PrivacySettings = PrivacySettings()
    postgres: PostgresSettings = PostgresSettings()
    connect: ConnectSettings = ConnectSettings()

    @property
    def lake_catalog(self) -> LakeCatalog:
        """The curated lake's catalog: as set, else the profile's."""
        if self.lake.catalog is not None:
            return self.lake.catalog
        return LakeCatalog.REST if self.profile is Profile.STACK else LakeCatalog.SQL

    @model_validator(mode="after")
    def _legacy_opensearch(self) -> Self:
        """Fold the old ``opensearch`` section into ``search``; names set the new way win."""
        legacy = self.opensearch
        if legacy is None:
            return self
        self.opensearch = None
        values = legacy.model_dump(exclude_none=True)
        search_update: dict[str, object] = {}
        prefix = values.pop("index_prefix", None)
        if prefix is not None and "index_prefix" not in self.search.model_fields_set:
            search_update["index_prefix"] = prefix
        connection = self.search.opensearch
        fresh = {k: v for k, v in values.items() if k not in connection.model_fields_set}
        if fresh:
            search_update["opensearch"] = connection.model_copy(update=fresh)
        if search_update:
            self.search = self.search.model_copy(update=search_update)
        return self

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> Self:
        superset_defaults = {
            "admin_password": LOCAL_SUPERSET_ADMIN_PASSWORD,
            "secret_key": LOCAL_SUPERSET_SECRET_KEY,
        }
        pseudonyms = self.privacy.pseudonyms
        postgres_defaults = {
            "password": LOCAL_POSTGRES_PASSWORD,
            "replication_password": LOCAL_POSTGRES_REPLICATION_PASSWORD,
        }
        if self.profile is Profile.LOCAL:
            if pseudonyms.enabled and pseudonyms.key is None:
                pseudonyms.key = SecretStr(LOCAL_PSEUDONYM_KEY)
            for name, default in superset_defaults.items():
                if getattr(self.superset, name) is None:
                    setattr(self.superset, name, SecretStr(default))
            for name, default in postgres_defaults.items():
                if getattr(self.postgres, name) is None:
                    setattr(self.postgres, name, SecretStr(default))
            return self
        insecure = []
        if self.s3.access_key_id == LOCAL_S3_ACCESS_KEY:
            insecure.append("TRIBUTARY_S3__ACCESS_KEY_ID")
        if self.s3.secret_access_key.get_secret_value() == LOCAL_S3_SECRET_KEY:
            insecure.append("TRIBUTARY_S3__SECRET_ACCESS_KEY")
        for name, default in superset_defaults.items():
            value = getattr(self.superset, name)
            if value is not None and value.get_secret_value() == default:
                insecure.append(f"TRIBUTARY_SUPERSET__{name.upper()}")
        if pseudonyms.enabled and pseudonyms.key is None:
            raise ValueError(
                f"profile '{self.profile}' has pseudonyms on but no key: set "
                "TRIBUTARY_PRIVACY__PSEUDONYMS__KEY (it has a default only in the local profile)"
            )
        keys = [pseudonyms.key, *pseudonyms.retired_keys.values()]
        if any(k is not None and k.get_secret_value() == LOCAL_PSEUDONYM_KEY for k in keys):
            insecure.append("TRIBUTARY_PRIVACY__PSEUDONYMS__KEY")
        for name, default in postgres_defaults.items():
            value = getattr(self.postgres, name)
            if value is not None and value.get_secret_value() == default:
                insecure.append(f"TRIBUTARY_POSTGRES__{name.upper()}")
        if insecure:
            raise ValueError(
                f"profile '{self.profile}' refuses the local default secrets; "
                f"set {', '.join(insecure)}"
            )
        return self
