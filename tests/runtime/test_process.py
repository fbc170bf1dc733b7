"""Process start-up: one line per record, quiet client libraries, a stop event on signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from runtime.process import stop_on_signals


@pytest.mark.integration
def test_records_are_one_line_naming_the_process_and_chatty_libraries_are_quiet() -> None:
    script = textwrap.dedent(
        """
        import logging
        from runtime.process import configure_logging
        configure_logging("enricher")
        logging.getLogger("opensearch").warning("GET / [status:N/A] with a traceback")
        logging.getLogger("httpx").info("HTTP Request: POST /v1/enrich 200")
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("streaming.enricher").exception("failed")
        logging.getLogger("streaming.enricher").info("assigned raw[0,1,2]")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 2, lines
    failed, assigned = lines
    assert " enricher ERROR streaming.enricher: failed | Traceback" in failed
    assert failed.endswith("ValueError: boom")
    assert assigned.endswith(" enricher INFO streaming.enricher: assigned raw[0,1,2]")


@pytest.mark.unit
def test_sigterm_and_sigint_set_the_stop_event() -> None:
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            stop = stop_on_signals()
            os.kill(os.getpid(), sig)
            assert stop.wait(5), f"{sig.name} did not set the stop event"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
