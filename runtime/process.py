"""Start-up of every long-running process: logging, stop signals, ``gc.freeze``.

``tributary run <name>`` starts each process through :func:`run_process`. The stream workers
get a stop event set by SIGTERM or SIGINT, which their loop polls: they finish the batch in
hand, commit and close. The HTTP servers (collector, enrichment API) run under uvicorn, which
handles the signals itself (graceful drain); they share the logging configuration (passed to
uvicorn as its ``log_config``, so that every server worker process applies it too) and freeze
their heap once their application has started (:func:`freeze_heap` in their lifespan).
"""

from __future__ import annotations

import gc
import logging
import logging.config
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Libraries that log a line per request (httpx) or a warning with a traceback per failed
# request (opensearch-py, elastic-transport): the workers report their dependencies' state
# changes themselves.
QUIET_LOGGERS = {
    "httpx": "WARNING",
    "httpcore": "WARNING",
    "urllib3": "WARNING",
    "opensearch": "ERROR",
    "elastic_transport": "ERROR",
    "botocore": "WARNING",
}


class OneLineFormatter(logging.Formatter):
    """Every record on one line: a traceback's lines are joined with `` | ``."""

    def format(self, record: logging.LogRecord) -> str:
        return " | ".join(line for line in super().format(record).splitlines() if line.strip())


def logging_config(name: str, level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a process called ``name``."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "line": {
                "()": OneLineFormatter,
                "fmt": f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s",
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "line",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            **{logger: {"level": lvl} for logger, lvl in QUIET_LOGGERS.items()},
            # uvicorn's own loggers go to the root handler rather than uvicorn's handlers.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True},
        },
    }


def configure_logging(name: str, level: str = "INFO") -> None:
    """One line per record, each naming the process."""
    logging.config.dictConfig(logging_config(name, level))


def stop_on_signals() -> threading.Event:
    """Return an event that SIGTERM and SIGINT set (install from the main thread)."""
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log.info("%s: stopping after the batch in hand", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    return stop


def freeze_heap() -> None:
    """Keep what start-up allocated out of every later garbage collection.

    The imported modules, a model, a parser's regexes and the like live as long as the
    process; a full collection walks the whole heap, and a worker allocates about 100k
    objects per batch (without this, a full collection now and then tripled a batch's time).
    """
    gc.freeze()


def run_process(name: str, main: Callable[[threading.Event], None], *, freeze: bool = True) -> None:
    """Run ``main(stop)`` as the process ``name``: logging, stop signals, then the heap frozen.

    ``freeze=False`` for a server that freezes its heap itself once its application started.
    """
    configure_logging(name)
    stop = stop_on_signals()
    if freeze:
        freeze_heap()
    main(stop)
