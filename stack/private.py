"""A second stack on free ports, with a state folder of its own.

Benchmarks and tests that stop servers at will, or must not touch the shared servers on the
default ports, start one of these: Kafka, SeaweedFS, OpenSearch, Elasticsearch and Trino all
on free ports.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from stack.config import StackSettings


def free_port() -> int:
    """A port nothing listens on now (the system's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair(used: set[int]) -> int:
    """A free port whose +10000 twin is free too (SeaweedFS puts its gRPC ports there)."""
    while True:
        port = random.randint(20000, 45000)
        if port in used or port + 10000 in used:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        used |= {port, port + 10000}
        return port


def private_stack_settings(state_dir: Path) -> StackSettings:
    """Stack settings with every server on free ports and its state in ``state_dir``.

    Built from explicit values only for the connections, so the shared servers on the default
    ports (and any ``TRIBUTARY_*`` connection variables) are never used.
    """
    used: set[int] = set()
    names = (
        *("kafka", "ctl", "s3", "ice", "master", "vol", "filer", "adm", "ln"),
        *("os", "ost", "es", "est", "tr"),
    )
    p = {n: free_port_pair(used) for n in names}
    return StackSettings.model_validate(
        {
            "kafka": {"bootstrap_servers": f"127.0.0.1:{p['kafka']}"},
            "s3": {
                "endpoint_url": f"http://127.0.0.1:{p['s3']}",
                "iceberg_catalog_uri": f"http://127.0.0.1:{p['ice']}",
            },
            "search": {
                "opensearch": {"url": f"http://127.0.0.1:{p['os']}"},
                "elasticsearch": {"url": f"http://127.0.0.1:{p['es']}"},
            },
            "trino": {"url": f"http://127.0.0.1:{p['tr']}"},
            "stack": {
                "state_dir": state_dir,
                "kafka_controller_port": p["ctl"],
                "seaweedfs_master_port": p["master"],
                "seaweedfs_volume_port": p["vol"],
                "seaweedfs_filer_port": p["filer"],
                "seaweedfs_admin_port": p["adm"],
                "seaweedfs_lance_port": p["ln"],
                "opensearch_transport_port": p["ost"],
                "elasticsearch_transport_port": p["est"],
            },
        }
    )
