"""Apache Kafka 4 in KRaft mode, one node acting as broker and controller."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid

from confluent_kafka import KafkaException

from resources.kafka import make_kafka_admin
from stack.errors import StackError
from stack.fetch import fetch_runtime_jars, java_executable
from stack.provision import provision_kafka
from stack.services.base import Service, local_port

# Kafka's POM brings slf4j-api 1.7 and log4j-core but no binding; add the matching one.
LOG4J_VERSION = "2.25.5"

_LOG4J2 = """status = warn
name = kafka
# Kafka stops itself on SIGTERM; log4j's own hook would close the log under it.
shutdownHook = disable
property.logDir = ${sys:kafka.logs.dir}
appender.file.type = RollingFile
appender.file.name = FILE
appender.file.fileName = ${logDir}/server.log
appender.file.filePattern = ${logDir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""

_QUIET = logging.getLogger("tributary.stack.kafka-probe")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def new_cluster_id() -> str:
    """A random cluster id as Kafka makes them (``Uuid.randomUuid``).

    URL-safe base64 of 16 random bytes, never starting with ``-``, which the storage tool's
    argument parser would take for an option (one id in 64 did: "argument --cluster-id/-t:
    expected one argument").
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class Kafka(Service):
    name = "kafka"
    description = "Apache Kafka (KRaft, single node)"

    @property
    def port(self) -> int:
        return local_port(
            self.settings.kafka.bootstrap_servers, "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS"
        )

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def ports(self) -> dict[str, int]:
        return {"broker": self.port, "controller": self.options.kafka_controller_port}

    @property
    def libs(self):  # type: ignore[no-untyped-def]
        return self.cache / f"kafka-{self.options.kafka_version}" / "libs"

    @property
    def coordinates(self) -> list[str]:
        """Kafka and the SLF4J binding its POM leaves out (their runtime deps come along)."""
        return [
            f"org.apache.kafka:kafka_2.13:{self.options.kafka_version}",
            f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
            f"org.apache.logging.log4j:log4j-core:{LOG4J_VERSION}",
        ]

    def install(self) -> None:
        fetch_runtime_jars(
            self.options.maven_repository,
            self.options.maven,
            "kafka",
            self.coordinates,
            self.libs,
        )

    def launch(self) -> tuple[list[str], dict[str, str]]:
        java = java_executable(self.options.java_home, 17, system_java=self.options.system_java)
        data, logs = self.home / "data", self.home / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        controller = self.options.kafka_controller_port
        properties = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{controller}",
            "log.dirs": str(data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # One node: every internal topic must make do with one replica.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
        }
        server_properties = self.home / "server.properties"
        server_properties.write_text("".join(f"{k}={v}\n" for k, v in properties.items()))
        log4j = self.home / "log4j2.properties"
        log4j.write_text(_LOG4J2)
        jvm = [
            java,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={logs}",
            "-cp",
            f"{self.libs}/*",
        ]
        if not (data / "meta.properties").exists():
            cluster_id = new_cluster_id()
            fmt = subprocess.run(
                [*jvm, "kafka.tools.StorageTool", "format", "--standalone",
                 f"--cluster-id={cluster_id}", "-c", str(server_properties)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if fmt.returncode != 0:
                raise StackError(f"formatting Kafka's storage failed:\n{fmt.stdout}{fmt.stderr}")
        heap = self.options.kafka_heap
        command = [jvm[0], f"-Xms{heap}", f"-Xmx{heap}", *jvm[1:], "kafka.Kafka"]
        return [*command, str(server_properties)], {}

    def healthy(self) -> bool:
        try:
            admin = make_kafka_admin(self.settings.kafka, logger=_QUIET)
            admin.list_topics(timeout=2)
        except KafkaException:
            return False
        return True

    def provision(self) -> list[str]:
        report = provision_kafka(self.settings)
        done = [f"topic {t} created" for t in report.created]
        done += [f"topic {t} reconfigured" for t in report.altered]
        done += [f"topic {t} given more partitions" for t in report.repartitioned]
        return done or [f"{len(report.unchanged)} topics up to date"]
