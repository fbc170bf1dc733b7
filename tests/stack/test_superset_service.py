"""How the stack configures Superset, without starting it."""

from __future__ import annotations

from pathlib import Path

import pytest

from stack.config import StackSettings
from stack.errors import StackError
from stack.services.superset import Superset, superset_version

pytestmark = pytest.mark.unit


def _service(tmp_path: Path, **values: object) -> Superset:
    settings = StackSettings.model_validate(
        {
            "superset": {"url": "http://127.0.0.1:28123"},
            "stack": {"state_dir": tmp_path / "state", "cache_dir": tmp_path / "cache"},
            **values,
        }
    )
    return Superset(settings)


def test_configuration_binds_loopback_keeps_metadata_in_the_state_folder(tmp_path: Path) -> None:
    service = _service(tmp_path)
    service.home.mkdir(parents=True)
    (service.home / f".initialised-{superset_version()}").touch()  # skip db upgrade and init
    command, env = service.launch()
    config = (service.home / "superset_config.py").read_text()
    assert f'"sqlite:///{service.home / "superset.db"}"' in config
    assert "SUPERSET_WEBSERVER_PORT = 28123" in config
    assert "SCARF_ANALYTICS = False" in config
    assert "--bind" in command and command[command.index("--bind") + 1] == "127.0.0.1:28123"
    assert command[0].startswith(str(service.venv)), "Superset runs from its own virtualenv"
    assert env["SUPERSET_CONFIG_PATH"] == str(service.home / "superset_config.py")
    assert env["SUPERSET_SECRET_KEY"] == service.settings.superset.secret("secret_key")
    assert env["SUPERSET_SECRET_KEY"] not in config, "the key stays out of files"
    assert service.ports() == {"http": 28123}


def test_the_virtualenv_follows_the_lock_file(tmp_path: Path) -> None:
    venv = _service(tmp_path).venv
    assert venv.parent == (tmp_path / "cache" / "venvs").resolve()
    assert venv.name.startswith(f"superset-{superset_version()}-py3")


def test_outside_local_a_missing_secret_is_named(tmp_path: Path) -> None:
    service = _service(
        tmp_path,
        profile="stack",
        s3={"access_key_id": "team", "secret_access_key": "a-real-secret"},
    )
    service.home.mkdir(parents=True)
    with pytest.raises(StackError, match="TRIBUTARY_SUPERSET__SECRET_KEY is not set"):
        service.launch()


def test_a_remote_superset_is_not_started_here(tmp_path: Path) -> None:
    service = _service(tmp_path, superset={"url": "https://bi.example.com"})
    with pytest.raises(StackError, match="not a loopback host:port"):
        service.ports()
