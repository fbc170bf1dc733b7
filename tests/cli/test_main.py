"""The ``tributary`` entry point: lazy subcommands, one failure line, documented exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cli.errors import EXIT_CODES, ExitCode
from cli.main import SUBCOMMANDS, load
from stack.private import free_port

TRIBUTARY = str(Path(sys.executable).parent / "tributary")
PROJECT = Path(__file__).resolve().parents[2]  # the checkout these tests belong to
HEAVY = (
    "pyarrow",
    "polars",
    "boto3",
    "dagster",
    "confluent_kafka",
    "opensearchpy",
    "elasticsearch",
    "streaming",
    "platform_assets",
)

# Runs the entry point as the script does, then says which heavy modules it loaded.
_PROBE = """
import json, sys
from cli.main import main
heavy = json.loads(sys.argv[2])
sys.argv = ["tributary", *json.loads(sys.argv[1])]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}))
"""


def _env(**overrides: str) -> dict[str, str]:
    """This environment without the platform's settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    return {**env, "COLUMNS": "200", **overrides}


def _probe(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(args), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
        cwd=PROJECT,
        check=False,
    )
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.mark.unit
@pytest.mark.parametrize("args", [["--help"], ["keys", "new", "my-app"]])
def test_light_commands_load_no_stage_and_no_heavy_library(args: list[str]) -> None:
    assert _probe(args) == {"code": 0, "loaded": []}


@pytest.mark.unit
def test_the_probe_sees_what_a_heavy_subcommand_loads() -> None:
    # The same probe on a subcommand that needs the stream's modules finds them loaded.
    answer = _probe(["dlq", "inspect", "--help"])
    assert answer["code"] == 0
    assert {"streaming", "confluent_kafka"} <= set(answer["loaded"])


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(SUBCOMMANDS))
def test_the_listing_shows_each_commands_own_summary(name: str) -> None:
    command = load(name)
    assert command.get_short_help_str(limit=300) == SUBCOMMANDS[name].summary


@pytest.mark.unit
def test_help_documents_every_exit_code() -> None:
    done = subprocess.run(
        [TRIBUTARY, "--help"], capture_output=True, text=True, env=_env(), check=False
    )
    assert done.returncode == 0
    text = " ".join(done.stdout.replace("│", " ").split())
    for code, meaning in EXIT_CODES.items():
        assert f"{int(code)} {' '.join(meaning.split())}" in text


def _fails(args: list[str], code: ExitCode, **env: str) -> str:
    """Run ``tributary args``; it must exit ``code`` with one line on stderr, which is returned."""
    done = subprocess.run(
        [TRIBUTARY, *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=_env(**env),
        cwd=PROJECT,
        check=False,
    )
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.unit
def test_trino_down_is_one_line_naming_it() -> None:
    port = free_port()
    line = _fails(
        ["query", "select 1", "--engine", "trino"],
        ExitCode.UNREACHABLE,
        TRIBUTARY_TRINO__URL=f"http://127.0.0.1:{port}",
    )
    assert line.startswith(f"error: Trino at http://127.0.0.1:{port} is unreachable"), line


@pytest.mark.unit
def test_kafka_down_is_one_line_and_librdkafka_stays_quiet() -> None:
    port = free_port()
    # One line on stderr: none of librdkafka's own "%3|...|FAIL|..." lines either.
    line = _fails(
        ["dlq", "inspect"],
        ExitCode.UNREACHABLE,
        TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{port}",
    )
    assert line.startswith(f"error: Kafka at 127.0.0.1:{port} is unreachable"), line
    assert "%3|" not in line


@pytest.mark.unit
def test_collector_down_is_one_line_naming_it(tmp_path: Path) -> None:
    port = free_port()
    line = _fails(
        [
            "produce",
            "clickstream",
            "-n",
            "5",
            "--url",
            f"http://127.0.0.1:{port}",
            "--max-retries",
            "0",
            "--spool",
            str(tmp_path / "spool.sqlite"),
        ],
        ExitCode.UNREACHABLE,
    )
    assert line.startswith(f"error: the collector at http://127.0.0.1:{port} is unreachable")
    assert f"5 events remain in {tmp_path / 'spool.sqlite'}" in line


@pytest.mark.unit
@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS", ""),
        ("TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:99999"),
        ("TRIBUTARY_KAFKA__PARTITIONS", "six"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(variable: str, value: str) -> None:
    line = _fails(["dlq", "inspect"], ExitCode.BAD_SETTING, **{variable: value})
    assert line.startswith(f"error: bad setting {variable}: "), line


@pytest.mark.unit
def test_a_malformed_json_setting_names_its_variable() -> None:
    line = _fails(
        ["run", "collector"], ExitCode.BAD_SETTING, TRIBUTARY_COLLECTOR__API_KEYS="[{oops"
    )
    assert "TRIBUTARY_COLLECTOR" in line, line


@pytest.mark.unit
def test_the_stack_status_shows_the_projects_folders_from_anywhere(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    done = subprocess.run(
        [TRIBUTARY, "stack", "status"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(TRIBUTARY_STACK__CACHE_DIR=str(cache)),
        check=False,
    )
    assert done.returncode in (ExitCode.OK, ExitCode.FAILED), done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [
        f"state folder: {PROJECT / '.tributary' / 'state'}",
        f"cache folder: {cache}",
    ], done.stdout
    assert not (tmp_path / ".tributary").exists()


@pytest.mark.unit
def test_the_state_folder_setting_still_wins(tmp_path: Path) -> None:
    done = subprocess.run(
        [TRIBUTARY, "stack", "status", "kafka"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(TRIBUTARY_STACK__STATE_DIR=str(tmp_path / "elsewhere")),
        check=False,
    )
    assert done.stdout.splitlines()[0] == f"state folder: {tmp_path / 'elsewhere'}", done.stdout
