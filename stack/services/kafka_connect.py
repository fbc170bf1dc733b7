"""A Kafka Connect worker in distributed mode, with Debezium's PostgreSQL connector plugin.

The worker is ``org.apache.kafka:connect-runtime`` at the broker's version, its jars pinned
by ``stack/locks/connect.lock``; its connector configurations, source offsets and task states
live in three compacted Kafka topics (:func:`resources.topics.connect_topics`, made before
the worker starts), so a second worker with the same ``group.id`` would join it. The plugin
is Debezium's ``debezium-connector-postgres-<version>-plugin.tar.gz`` from Maven Central,
checked against the digest served beside it and unpacked into the plugin path. The REST API
listens on 127.0.0.1 only; provisioning applies the shop's connector through it.
"""

from __future__ import annotations

import httpx
from confluent_kafka import KafkaException

from resources.connect import apply_connector, shop_connector_config
from resources.kafka import make_kafka_admin
from resources.postgres import system_identifier
from resources.topics import connect_topics, ensure_topics
from stack.errors import StackError
from stack.fetch import fetch_archive, fetch_runtime_jars, java_executable
from stack.services.base import Service, local_port
from stack.services.kafka import LOG4J_VERSION

_LOG4J2 = """status = warn
name = connect
shutdownHook = disable
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.console.ref = STDOUT
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
"""


class KafkaConnect(Service):
    name = "kafka-connect"
    description = "Kafka Connect (distributed worker) with Debezium's PostgreSQL connector"
    needs = ("kafka", "postgres")

    @property
    def port(self) -> int:
        return local_port(self.settings.connect.url, "TRIBUTARY_CONNECT__URL")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"rest": self.port}

    @property
    def libs(self):  # type: ignore[no-untyped-def]
        return self.cache / f"connect-{self.options.kafka_version}" / "libs"

    @property
    def plugin_path(self):  # type: ignore[no-untyped-def]
        return self.cache / "connect-plugins"

    @property
    def coordinates(self) -> list[str]:
        """Connect's runtime and the SLF4J binding its POM leaves out (as for the broker)."""
        return [
            f"org.apache.kafka:connect-runtime:{self.options.kafka_version}",
            f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
            f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
        ]

    @property
    def plugin(self) -> str:
        return f"io.debezium:debezium-connector-postgres:{self.options.debezium_version}"

    def install(self) -> None:
        fetch_runtime_jars(
            self.options.maven_repository,
            self.options.maven,
            "connect",
            self.coordinates,
            self.libs,
        )
        fetch_archive(
            self.options.maven_repository,
            f"{self.plugin}:tar.gz:plugin",
            self.plugin_path / f"debezium-connector-postgres-{self.options.debezium_version}",
        )

    def launch(self) -> tuple[list[str], dict[str, str]]:
        java = java_executable(self.options.java_home, 17, system_java=self.options.system_java)
        self.home.mkdir(parents=True, exist_ok=True)
        kafka, topics = self.settings.kafka, self.settings.topics
        try:
            ensure_topics(make_kafka_admin(kafka), connect_topics(topics, kafka))
        except KafkaException as exc:
            raise StackError(f"Kafka refused Kafka Connect's topics: {exc}") from exc
        replication = str(kafka.replication_factor)
        properties = {
            "bootstrap.servers": kafka.bootstrap_servers,
            "security.protocol": kafka.security_protocol,
            "group.id": self.options.connect_group_id,
            "config.storage.topic": topics.connect_configs,
            "offset.storage.topic": topics.connect_offsets,
            "status.storage.topic": topics.connect_status,
            "config.storage.replication.factor": replication,
            "offset.storage.replication.factor": replication,
            "status.storage.replication.factor": replication,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            # Source offsets (Debezium's LSN) are committed every second, not every minute:
            # a worker killed mid-stream then re-sends at most a second of changes.
            "offset.flush.interval.ms": "1000",
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.port),
            "plugin.path": str(self.plugin_path),
            # Every plugin here (Debezium's, Connect's own) declares itself in a ServiceLoader
            # manifest: reading those takes a second or two where the default (hybrid_warn)
            # also scans every class by reflection (34 s here).
            "plugin.discovery": "service_load",
            # Connectors may create their topics (Debezium's change topics), with the
            # settings their configuration gives (``topic.creation.default.*``).
            "topic.creation.enable": "true",
        }
        worker = self.home / "worker.properties"
        worker.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J2)
        heap = self.options.connect_heap
        command = [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{self.libs}/*",
            "org.apache.kafka.connect.cli.ConnectDistributed",
            str(worker),
        ]
        return command, {}

    def in_use(self) -> bool:
        """Only with change capture on (``TRIBUTARY_STACK__CDC``): nothing reads it otherwise."""
        return self.options.cdc

    def healthy(self) -> bool:
        """Whether the REST API answers and the worker has joined its group (lists connectors)."""
        try:
            resp = httpx.get(f"{self.url}/connectors", timeout=2)
        except httpx.HTTPError:
            return False
        return resp.status_code == 200

    def provision(self) -> list[str]:
        name = self.settings.connect.connector
        identity = system_identifier(self.settings.postgres)
        outcome, _ = apply_connector(
            self.settings.connect.url, name, shop_connector_config(self.settings, identity)
        )
        if outcome == "reset":
            outcome = "reset (another PostgreSQL cluster than its offsets': snapshot anew)"
        return [f"connector {name} {outcome}, RUNNING"]
