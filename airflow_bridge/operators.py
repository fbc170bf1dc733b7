"""An Airflow 3 operator that materialises Dagster assets for one partition and waits for it.

Install by putting the ``airflow_bridge`` package on the Python path of Airflow's workers, DAG
processor and scheduler (for example in ``$AIRFLOW_HOME/plugins/``): it needs nothing beyond
Airflow itself (``airflow.sdk`` and ``httpx``). The webserver's address comes from an Airflow
connection (``dagster_default`` unless ``dagster_conn_id`` says otherwise), for example
``AIRFLOW_CONN_DAGSTER_DEFAULT=http://dagster.internal:3000``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from airflow.sdk import BaseHook, BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_bridge.dagster_client import (
    DEFAULT_REPOSITORY,
    DagsterClient,
    DagsterError,
    DagsterRequestError,
    DagsterRunFailed,
    DagsterRunTimeout,
    split_keys,
    webserver_url,
)

DEFAULT_CONN_ID = "dagster_default"


class DagsterAssetOperator(BaseOperator):
    """Materialise ``asset_keys`` of a Dagster code location for ``partition_key``; wait.

    Args:
        asset_keys: Asset keys as ``a/b/c`` strings (a list, or one comma-separated string).
        location: The code location's name (``workspace.yaml``'s ``location_name``).
        partition_key: The partition to materialise; templated, default the logical date.
            ``None`` for unpartitioned assets.
        repository: The repository in the location (``__repository__`` for ``Definitions``).
        dagster_conn_id: The Airflow connection holding the webserver's address.
        run_tags: Extra Dagster run tags (templated); the Airflow run is always tagged.
        poll_interval: Seconds between status requests.
        run_timeout: Give up waiting (and terminate the run) after this many seconds.
    """

    template_fields: Sequence[str] = ("asset_keys", "partition_key", "run_tags")
    ui_color = "#4f43dd"

    def __init__(
        self,
        *,
        asset_keys: Sequence[str] | str,
        location: str,
        partition_key: str | None = "{{ ds }}",
        repository: str = DEFAULT_REPOSITORY,
        dagster_conn_id: str = DEFAULT_CONN_ID,
        run_tags: Mapping[str, str] | None = None,
        poll_interval: float = 10.0,
        run_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset_keys = asset_keys
        self.location = location
        self.partition_key = partition_key
        self.repository = repository
        self.dagster_conn_id = dagster_conn_id
        self.run_tags = dict(run_tags or {})
        self.poll_interval = poll_interval
        self.run_timeout = run_timeout
        self._run_id: str | None = None

    def _connect(self) -> DagsterClient:
        conn = BaseHook.get_connection(self.dagster_conn_id)
        if not conn.host:
            raise AirflowFailException(f"connection {self.dagster_conn_id!r} has no host")
        url = webserver_url(conn.conn_type, conn.host, conn.port, conn.schema)
        headers = dict(conn.extra_dejson.get("headers", {}))
        return DagsterClient(url, headers=headers)

    def execute(self, context: Context) -> str:
        keys = split_keys(self.asset_keys)
        if not keys:
            raise AirflowFailException("no asset key to materialise")
        partition = self.partition_key or None
        ti = context["ti"]
        tags = {
            **self.run_tags,
            "airflow/dag_id": ti.dag_id,
            "airflow/run_id": ti.run_id,
            "airflow/task_id": ti.task_id,
            "airflow/try_number": str(ti.try_number),
        }
        client = self._connect()
        try:
            client.check_selection(self.location, keys, partition)
            self._run_id = run_id = client.launch(
                self.location, keys, partition, repository=self.repository, tags=tags
            )
            self.log.info(
                "Dagster run %s materialises %s for partition %s: %s",
                run_id,
                ", ".join(keys),
                partition,
                client.run_url(run_id),
            )
            client.wait(
                run_id,
                poll_interval=self.poll_interval,
                timeout=self.run_timeout,
                on_status=lambda status: self.log.info("Dagster run %s is %s", run_id, status),
            )
            self._run_id = None  # ended: nothing left for on_kill to terminate
        except DagsterRequestError as e:
            # Retrying cannot help: the selection or partition is wrong.
            raise AirflowFailException(str(e)) from e
        except DagsterRunFailed as e:
            self._run_id = None
            raise AirflowException(str(e)) from e
        except DagsterRunTimeout as e:
            self._terminate()
            raise AirflowException(str(e)) from e
        except DagsterError as e:
            raise AirflowException(str(e)) from e
        except httpx.HTTPError as e:
            raise AirflowException(f"Dagster webserver {client.url} unreachable: {e}") from e
        finally:
            client.close()
        self.log.info("Dagster run %s succeeded", run_id)
        return run_id

    def _terminate(self) -> None:
        if self._run_id is None:
            return
        client = self._connect()
        try:
            problem = client.terminate(self._run_id)
        except (DagsterError, httpx.HTTPError) as e:
            problem = str(e)
        finally:
            client.close()
        if problem:
            self.log.warning("could not terminate Dagster run %s: %s", self._run_id, problem)
        else:
            self.log.info("terminated Dagster run %s", self._run_id)

    def on_kill(self) -> None:
        self._terminate()
