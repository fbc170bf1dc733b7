"""What every server of the local stack provides to the stack manager."""

from __future__ import annotations

import abc
import signal
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from stack.config import StackSettings
from stack.errors import StackError


def local_port(url_or_hostport: str, what: str) -> int:
    """Return the port of a loopback address; refuse any other host (we only run locally)."""
    text = url_or_hostport.split(",")[0].strip()
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        raise StackError(
            f"{what} is '{text}', which is not a loopback host:port; the local stack binds "
            "127.0.0.1 only. Point it at 127.0.0.1:<port>, or run that server yourself."
        )
    return parts.port


class Service(abc.ABC):
    """One server: how to fetch it, configure it, start it and tell that it is healthy."""

    name: ClassVar[str]
    description: ClassVar[str]
    needs: ClassVar[tuple[str, ...]] = ()
    """Services that must answer before this one is launched (when started together)."""
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM
    """What asks its process group to stop (SIGKILL follows after the stop timeout)."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.options = settings.stack
        self.home: Path = (settings.stack.state_dir / self.name).resolve()
        self.cache: Path = settings.stack.cache_dir.expanduser().resolve()

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """Where clients reach it."""

    @abc.abstractmethod
    def ports(self) -> dict[str, int]:
        """Every port it listens on, by role."""

    @abc.abstractmethod
    def install(self) -> None:
        """Fetch what it needs into the cache (no-op when cached)."""

    @abc.abstractmethod
    def launch(self) -> tuple[list[str], dict[str, str]]:
        """Write its configuration and return the command line and extra environment."""

    @abc.abstractmethod
    def healthy(self) -> bool:
        """Return True when it answers its clients."""

    def in_use(self) -> bool:
        """Whether the platform's settings use it (``tributary stack up`` starts those)."""
        return True

    def provision(self) -> list[str]:
        """Create what the platform needs on it once it is healthy; describe what was done."""
        return []
