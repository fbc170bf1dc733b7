"""The ``tributary`` command's exit codes, and the one line it prints when a command fails.

:func:`cli.main.main` runs every command through :func:`failure_of`: a server that does not
answer, a setting that does not parse, a stack that cannot start each end the command with one
line on stderr that names the server (and its address) or the environment variable, and the
exit code documented here (in the README and ``tributary --help``). Anything else is a defect
and keeps its traceback.

Exceptions are recognised by the qualified names of their classes, so that a command that
never loaded Kafka's, Trino's or OpenSearch's client does not load it to report a failure.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from urllib.parse import urlsplit


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    BAD_SETTING = 3
    UNREACHABLE = 4
    STACK = 5
    PARTLY_FOUND = 6
    NOT_FOUND = 7
    DEFECT = 70


EXIT_CODES: dict[ExitCode, str] = {
    ExitCode.OK: "done",
    ExitCode.FAILED: "the command ran and found a fault: the demo's counts do not add up, a "
    "server of `stack status` is not running, a query was refused, events remain unsent",
    ExitCode.USAGE: "wrong usage: an unknown command or option, a bad argument",
    ExitCode.BAD_SETTING: "a setting (a TRIBUTARY_... environment variable) is invalid",
    ExitCode.UNREACHABLE: "a server (Kafka, S3, the search store, Trino, Superset, the "
    "collector) does not answer at its configured address",
    ExitCode.STACK: "the local stack or the demo's stream processes could not start or stop",
    ExitCode.PARTLY_FOUND: "`trace`: the event was found but stopped somewhere (a dead letter, "
    "a quarantine) or a later stage lacks it",
    ExitCode.NOT_FOUND: "`trace`: the event is in no stage",
    ExitCode.DEFECT: "an unexpected error (a defect), printed with its traceback",
}


def epilog() -> str:
    """The exit codes, for ``tributary --help``."""
    return "Exit codes:\n\n" + "\n\n".join(f"{int(c)}  {text}" for c, text in EXIT_CODES.items())


class CommandError(Exception):
    """A failure a command reports as one line, with its exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


class Unreachable(CommandError):
    """A server that did not answer, named by the command that knows which one it called."""

    def __init__(self, server: str, address: str, detail: str) -> None:
        super().__init__(f"{server} at {address} is unreachable: {detail}", ExitCode.UNREACHABLE)


# Exceptions of the client libraries that mean "the server did not answer", by class name,
# with the server they belong to (None: the one whose address the exception names).
_UNREACHABLE: dict[str, str | None] = {
    "trino.exceptions.TrinoConnectionError": "Trino",
    "opensearchpy.exceptions.ConnectionError": "OpenSearch",
    "elastic_transport.ConnectionError": "Elasticsearch",
    "botocore.exceptions.EndpointConnectionError": "S3",
    "botocore.exceptions.ConnectTimeoutError": "S3",
    "httpx.NetworkError": None,
    "httpx.TimeoutException": None,
    "requests.exceptions.ConnectionError": None,
    "requests.exceptions.Timeout": None,
}
_KAFKA_EXCEPTION = "cimpl.KafkaException"
# librdkafka's errors for a cluster it cannot reach (others are the broker's answers).
_KAFKA_UNREACHABLE = {"_TRANSPORT", "_ALL_BROKERS_DOWN", "_TIMED_OUT", "_RESOLVE", "_MSG_TIMED_OUT"}
_STACK = {"stack.errors.StackError", "stack.provision.ProvisionError"}
_VALIDATION = "pydantic_core._pydantic_core.ValidationError"
_MISSING = "resources.settings.MissingSetting"
_SETTINGS_PARSE = "pydantic_settings.exceptions.SettingsError"

# Where each server's address is in the platform's settings.
_ADDRESSES: dict[str, tuple[str, ...]] = {
    "Kafka": ("kafka", "bootstrap_servers"),
    "S3": ("s3", "endpoint_url"),
    "Iceberg REST catalog": ("s3", "iceberg_catalog_uri"),
    "OpenSearch": ("search", "opensearch", "url"),
    "Elasticsearch": ("search", "elasticsearch", "url"),
    "Trino": ("trino", "url"),
    "Superset": ("superset", "url"),
}


def one_line(text: str) -> str:
    """``text`` on one line: its lines joined with `` | ``, runs of blanks made one space."""
    lines = (" ".join(line.split()) for line in text.splitlines())
    return " | ".join(line for line in lines if line)


def _names(exc: BaseException) -> set[str]:
    return {f"{cls.__module__}.{cls.__qualname__}" for cls in type(exc).__mro__}


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and the exceptions it was raised from (``raise ... from``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def _configured() -> dict[str, str]:
    """The configured address of each server; none when the settings themselves are broken."""
    from pydantic import ValidationError

    from resources.settings import PlatformSettings

    try:
        settings = PlatformSettings()
    except (ValidationError, ValueError):
        return {}
    addresses = {}
    for server, path in _ADDRESSES.items():
        value: object = settings
        for name in path:
            value = getattr(value, name)
        addresses[server] = str(value)
    return addresses


def _netloc(url: str) -> str:
    return urlsplit(url if "//" in url else f"//{url}").netloc


def _url_of(exc: BaseException) -> str | None:
    """The URL an HTTP client's exception was about, if it says."""
    try:
        request = getattr(exc, "request", None)
    except RuntimeError:  # httpx: the exception carries no request
        request = None
    if request is not None and getattr(request, "url", None):
        return str(request.url)
    match = re.search(r"host='([^']+)', port=(\d+)", str(exc))
    return f"http://{match[1]}:{match[2]}" if match else None


def _unreachable(exc: BaseException, server: str | None) -> str:
    configured = _configured()
    address = configured.get(server) if server else None
    if server is None:
        url = _url_of(exc)
        server = next(
            (s for s, a in configured.items() if url and _netloc(a) == _netloc(url)), "server"
        )
        address = url or "its address"
    detail = one_line(str(exc)) or type(exc).__name__
    return f"{server} at {address or 'its configured address'} is unreachable: {detail}"


def _settings_class(title: str) -> type | None:
    from pydantic_settings import BaseSettings

    pending: list[type] = [BaseSettings]
    while pending:
        cls = pending.pop()
        if cls.__name__ == title:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _env_name(settings_cls: type, loc: tuple[object, ...]) -> str:
    """The environment variable of a field's location (the part before any list index)."""
    config = getattr(settings_cls, "model_config", {})
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "__")
    parts: list[str] = []
    for part in loc:
        if not isinstance(part, str):
            break
        parts.append(part)
    return (prefix + delimiter.join(parts)).upper()


def _bad_setting(exc: BaseException) -> str | None:
    names = _names(exc)
    if _MISSING in names:
        return f"bad setting {one_line(str(exc))}"
    if _SETTINGS_PARSE in names:
        field = re.search(r'field "([^"]+)"', str(exc))
        where = (
            f"TRIBUTARY_{field[1].upper()} (or a TRIBUTARY_{field[1].upper()}__* variable)"
            if field
            else "a TRIBUTARY_ variable"
        )
        return f"bad setting {where}: {one_line(str(exc))}"
    if _VALIDATION not in names:
        return None
    settings_cls = _settings_class(getattr(exc, "title", ""))
    if settings_cls is None:  # a validation error of data, not of settings
        return None
    problems = []
    for error in exc.errors():  # type: ignore[attr-defined]
        loc = tuple(error.get("loc", ()))
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if loc:
            problems.append(f"{_env_name(settings_cls, loc)}: {message}")
        else:  # a check across fields: its message names the variables
            problems.append(message)
    return "bad setting " + one_line("; ".join(problems))


def failure_of(exc: BaseException) -> tuple[ExitCode, str] | None:
    """The exit code and the one line for ``exc``; ``None`` when it is a defect.

    The exceptions ``exc`` was raised from count too: a stack that could not provision
    Kafka because Kafka does not answer is an unreachable server.
    """
    chain = list(_chain(exc))
    for link in chain:
        if isinstance(link, CommandError):
            return link.code, one_line(str(link))
        if message := _bad_setting(link):
            return ExitCode.BAD_SETTING, message
        names = _names(link)
        if _KAFKA_EXCEPTION in names:
            code_name = getattr(link.args[0], "name", None) if link.args else None
            if callable(code_name) and code_name() in _KAFKA_UNREACHABLE:
                return ExitCode.UNREACHABLE, _unreachable(link, "Kafka")
        for cls_name, server in _UNREACHABLE.items():
            if cls_name in names:
                return ExitCode.UNREACHABLE, _unreachable(link, server)
    for link in chain:
        if _names(link) & _STACK:
            return ExitCode.STACK, one_line(str(link))
    return None
