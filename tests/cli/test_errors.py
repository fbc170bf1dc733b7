"""Which exit code and line each failure gets (pure logic, on hand-built exceptions)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from pydantic import ValidationError

from cli.errors import ExitCode, Unreachable, failure_of, one_line
from resources.settings import PlatformSettings
from stack.errors import StackError
from stack.provision import ProvisionError

pytestmark = pytest.mark.unit


def _settings_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> ValidationError:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        PlatformSettings()
    return info.value


def test_a_settings_error_names_each_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _settings_error(
        monkeypatch, TRIBUTARY_KAFKA__PARTITIONS="x", TRIBUTARY_OPENSEARCH__VERIFY_CERTS="maybe"
    )
    code, line = failure_of(exc) or (None, "")
    assert code is ExitCode.BAD_SETTING
    assert "TRIBUTARY_KAFKA__PARTITIONS: " in line
    assert "TRIBUTARY_OPENSEARCH__VERIFY_CERTS: " in line
    assert "\n" not in line


def test_a_check_across_settings_keeps_its_message(monkeypatch: pytest.MonkeyPatch) -> None:
    exc = _settings_error(monkeypatch, TRIBUTARY_PROFILE="stack")
    code, line = failure_of(exc) or (None, "")
    assert code is ExitCode.BAD_SETTING
    assert "TRIBUTARY_S3__ACCESS_KEY_ID" in line and "Value error" not in line


def test_a_validation_error_of_data_is_a_defect() -> None:
    from ingestion.core.config import ApiKey

    with pytest.raises(ValidationError) as info:
        ApiKey.model_validate({"producer": 3})
    assert failure_of(info.value) is None


def test_kafka_unreachable_but_not_every_kafka_error() -> None:
    down = KafkaException(KafkaError(KafkaError._TRANSPORT))
    assert failure_of(down) is not None
    assert failure_of(down)[0] is ExitCode.UNREACHABLE  # type: ignore[index]
    assert "Kafka at 127.0.0.1:9092 is unreachable" in failure_of(down)[1]  # type: ignore[index]
    refused = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    assert failure_of(refused) is None


def test_a_stack_failure_and_what_it_was_raised_from() -> None:
    assert failure_of(StackError("port 9092 is taken\nstop it")) == (
        ExitCode.STACK,
        "port 9092 is taken | stop it",
    )
    try:
        try:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        except KafkaException as exc:
            raise ProvisionError("Kafka refused the topics") from exc
    except ProvisionError as exc:
        provision = exc
    assert failure_of(provision)[0] is ExitCode.UNREACHABLE  # type: ignore[index]
    assert failure_of(ProvisionError("bucket exists"))[0] is ExitCode.STACK  # type: ignore[index]


def test_a_command_names_the_server_itself() -> None:
    code, line = failure_of(Unreachable("the collector", "http://h:1", "refused")) or (None, "")
    assert (code, line) == (
        ExitCode.UNREACHABLE,
        "the collector at http://h:1 is unreachable: refused",
    )


def test_an_http_error_is_named_by_its_address() -> None:
    import httpx

    request = httpx.Request("GET", "http://127.0.0.1:8088/api/v1/security/login")
    code, line = failure_of(httpx.ConnectError("refused", request=request)) or (None, "")
    assert code is ExitCode.UNREACHABLE
    assert line.startswith("Superset at http://127.0.0.1:8088/api/v1/security/login"), line


def test_anything_else_is_a_defect() -> None:
    assert failure_of(RuntimeError("bug")) is None
    assert failure_of(KeyError("x")) is None


def test_one_line() -> None:
    assert one_line("a\n\n  b   c\n") == "a | b c"


def test_a_secret_missing_outside_local_is_a_bad_setting() -> None:
    settings = PlatformSettings()
    settings.superset.secret_key = None  # as the stack profile leaves it when unset
    try:
        try:
            settings.superset.secret("secret_key")
        except ValueError as exc:
            raise StackError(str(exc)) from exc  # as the Superset service reports it
    except StackError as exc:
        stack = exc
    code, line = failure_of(stack)  # type: ignore[misc]
    assert code is ExitCode.BAD_SETTING
    assert "TRIBUTARY_SUPERSET__SECRET_KEY is not set" in line
