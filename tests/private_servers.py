"""Servers of a test's own (SeaweedFS, OpenSearch), on free ports, which it may stop at will.

The session's shared servers must stay up for the other tests; a test that stops a server
mid-stream uses one of these instead.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

from stack.config import StackSettings


def free_port_pair(used: set[int]) -> int:
    """A port free together with its gRPC twin at +10000 (SeaweedFS uses both)."""
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
    """Stack settings whose SeaweedFS and OpenSearch use free ports and ``state_dir``."""
    used: set[int] = set()
    names = ("s3", "ice", "master", "vol", "filer", "adm", "ln", "os", "os_transport")
    ports = {n: free_port_pair(used) for n in names}
    return StackSettings.model_validate(
        {
            "s3": {
                "endpoint_url": f"http://127.0.0.1:{ports['s3']}",
                "iceberg_catalog_uri": f"http://127.0.0.1:{ports['ice']}",
            },
            "opensearch": {"url": f"http://127.0.0.1:{ports['os']}"},
            "stack": {
                "state_dir": state_dir,
                "seaweedfs_master_port": ports["master"],
                "seaweedfs_volume_port": ports["vol"],
                "seaweedfs_filer_port": ports["filer"],
                "seaweedfs_admin_port": ports["adm"],
                "seaweedfs_lance_port": ports["ln"],
                "opensearch_transport_port": ports["os_transport"],
            },
        }
    )
