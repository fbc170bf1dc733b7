"""Throughput and latency of the collector (REST) against a real local Kafka, and its ceiling.

Measured in one run, on this machine, everything sharing its cores:

- (a) sustained events/s accepted (202 only), 100-event batches per POST, wrk at saturation;
- (b) requests/s of single-event POSTs at saturation (wrk), and p50/p99 latency at a fixed
  offered load (vegeta, constant rate, default 1,000 requests/s);
- (c) the ceiling: the raw confluent-kafka producer, with the collector's producer settings,
  sending the same serialised records to the same raw topic, counted including the final flush;
- a py-spy profile of one collector worker under the batch and the single-event loads, reduced
  to the hot spots in our code (ingestion/*, contract/*).

Run: ``uv run python benchmarks/bench_collector.py [--seconds 20] [--workers 2]``.

Sets up what it needs: wrk (apt), vegeta (``go install``, cached in ~/.cache/tributary/bin),
py-spy (``uvx``, cached by uv); Kafka through the local stack (reused when running, stopped at
the end only when this run started it); a collector (``tributary run collector``) with a
generated API key, stopped at the end. Outputs (wrk/vegeta/py-spy files, collector log) go to
``.tributary/bench/collector/``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
os.chdir(ROOT)  # the stack's state folder and our output folder are relative to the repo
sys.path.insert(0, str(ROOT))

from contract.envelope import EnvelopeRules, check_envelope  # noqa: E402
from contract.registry import SchemaRegistry  # noqa: E402
from ingestion.core.config import CollectorSettings  # noqa: E402
from ingestion.core.delivery import KafkaBridge  # noqa: E402
from ingestion.core.ingest import RequestContext  # noqa: E402
from ingestion.producers.sources import encode  # noqa: E402
from resources.kafka import make_kafka_producer  # noqa: E402
from simulator.events import ClickstreamSource  # noqa: E402
from stack.config import StackSettings  # noqa: E402
from stack.manager import Stack  # noqa: E402

LUA = ROOT / "benchmarks" / "collector" / "post_bodies.lua"
OUT = ROOT / ".tributary" / "bench" / "collector"
BIN = Path.home() / ".cache" / "tributary" / "bin"
VEGETA_VERSION = "v12.13.0"
PY_SPY = "py-spy==0.4.3"
TRIBUTARY = str(Path(sys.executable).parent / "tributary")

TARGET_BATCH_EPS = 30_000
TARGET_BATCH_SHARE = 0.25
TARGET_SINGLE_RPS = 3_000  # single-event requests/s at saturation (issue 14)
TARGET_P99_MS = 50.0


def say(msg: str = "") -> None:
    print(msg, flush=True)


# -- tools ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("wrk is missing: install it (Debian: apt-get install -y wrk) and rerun")
    say("installing wrk: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=True)
        subprocess.run(
            ["apt-get", "install", "-y", "wrk"], env=env, capture_output=True, check=True
        )
    return shutil.which("wrk") or sys.exit("wrk did not install")


def ensure_vegeta() -> str:
    path = BIN / "vegeta"
    if path.exists():
        return str(path)
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if go is None:
        sys.exit(f"vegeta is missing and Go is not installed; put a vegeta binary at {path}")
    say(f"installing vegeta: go install github.com/tsenart/vegeta/v12@{VEGETA_VERSION} -> {BIN}")
    BIN.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [go, "install", f"github.com/tsenart/vegeta/v12@{VEGETA_VERSION}"],
        env={**os.environ, "GOBIN": str(BIN)},
        check=True,
    )
    return str(path)


def py_spy_command() -> list[str] | None:
    uvx = shutil.which("uvx")
    if uvx:
        cmd = [uvx, "--from", PY_SPY, "py-spy"]
    elif shutil.which("uv"):
        cmd = [str(shutil.which("uv")), "tool", "run", "--from", PY_SPY, "py-spy"]
    else:
        return None
    ok = subprocess.run([*cmd, "--version"], capture_output=True, timeout=300).returncode == 0
    return cmd if ok else None


# -- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process (0 when unknown or gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores, /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def kernel_irq() -> float:
    """CPU seconds the kernel spent in irq/softirq since boot (loopback TCP lands there)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (fields[5] + fields[6]) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def child_pids(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append(int(entry.name))
    return out


def cmdline(pid: int) -> str:
    try:
        return (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
    except OSError:
        return ""


@dataclass
class Collector:
    workers: int
    key: str = field(default_factory=lambda: "trib_bench_" + secrets.token_urlsafe(24))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log: Path = OUT / "collector.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, bootstrap: str, timeout: float = 90) -> None:
        keys = [{"producer": "bench", "sha256": hashlib.sha256(self.key.encode()).hexdigest()}]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_COLLECTOR__")}
        env.update(
            {
                "TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                "TRIBUTARY_COLLECTOR__PORT": str(self.port),
                "TRIBUTARY_COLLECTOR__GRPC_PORT": "0",
                "TRIBUTARY_COLLECTOR__WORKERS": str(self.workers),
                "TRIBUTARY_COLLECTOR__API_KEYS": orjson.dumps(keys).decode(),
            }
        )
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [TRIBUTARY, "run", "collector"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"collector exited at start:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                ready = httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
                # Every worker must be up, not just the first to answer.
                if ready and len(self.worker_pids()) >= self.workers:
                    return
            time.sleep(0.3)
        self.stop()
        sys.exit(f"collector not ready within {timeout:.0f}s:\n{self.log.read_text()[-3000:]}")

    def worker_pids(self) -> list[int]:
        assert self.proc is not None
        if self.workers == 1:
            return [self.proc.pid]
        return sorted(p for p in child_pids(self.proc.pid) if "spawn_main" in cmdline(p))

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.worker_pids())

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None


# -- load data -----------------------------------------------------------------------------


def valid_events(registry: SchemaRegistry, count: int, seed: int) -> tuple[list[bytes], str]:
    """Serialised valid events from the seeded clickstream generator the producers use."""
    source = iter(ClickstreamSource(users=max(1, count // 20), seed=seed))
    out = [encode(next(source)) for _ in range(count)]
    return out, "ClickstreamSource (seeded, valid events only)"


@dataclass
class Data:
    batch_file: Path
    single_file: Path
    vegeta_targets: Path
    records: list[tuple[bytes, str]]  # (value, key) as the collector writes them to raw
    batch_size: int
    batches: int
    origin: str


def prepare(registry: SchemaRegistry, url: str, key: str, batches: int, batch_size: int) -> Data:
    OUT.mkdir(parents=True, exist_ok=True)
    events, origin = valid_events(registry, batches * batch_size, seed=11)
    batch_file = OUT / "batches.jsonl"
    with batch_file.open("wb") as f:
        for b in range(batches):
            f.write(b"[" + b",".join(events[b * batch_size : (b + 1) * batch_size]) + b"]\n")
    singles = events[:3000]
    single_file = OUT / "singles.jsonl"
    single_file.write_bytes(b"".join(e + b"\n" for e in singles))
    targets = OUT / "vegeta_targets.jsonl"
    header = {"Content-Type": ["application/json"], "Authorization": [f"Bearer {key}"]}
    with targets.open("wb") as f:
        for e in singles:
            target = {
                "method": "POST",
                "url": f"{url}/v1/events",
                "body": base64.b64encode(e).decode(),
                "header": header,
            }
            f.write(orjson.dumps(target) + b"\n")
    # What the collector writes for these events: the event plus its "collector" metadata,
    # keyed by the envelope's partition key.
    rules = EnvelopeRules()
    ctx = RequestContext("bench", "127.0.0.1", "wrk", "0" * 36, "rest")
    meta = ctx.metadata("bench-host-1")
    records = []
    for raw in events:
        data = orjson.loads(raw)
        check = check_envelope(data, registry, rules, size_bytes=len(raw))
        assert check.envelope is not None, check.errors
        records.append((orjson.dumps({**data, "collector": meta}), check.envelope.partition_key()))
    return Data(batch_file, single_file, targets, records, batch_size, batches, origin)


# -- wrk -----------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")


@dataclass
class WrkResult:
    statuses: Counter[int]
    socket_errors: list[int]
    seconds: float
    p50_ms: float
    p99_ms: float
    cpu_s: float = 0.0

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def bad(self) -> int:
        """Requests not answered 202, plus socket errors (connect/read/write/timeout)."""
        errs = self.socket_errors
        return self.requests - self.statuses[202] + errs[0] + errs[1] + errs[2] + errs[4]

    def rate(self, status: int | None = None) -> float:
        n = self.requests if status is None else self.statuses[status]
        return n / self.seconds if self.seconds else 0.0


def run_wrk(
    wrk: str, url: str, bodies: Path, key: str, seconds: int, connections: int, name: str
) -> WrkResult:
    cmd = [
        wrk,
        "-t",
        "2",
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(LUA),
        url,
        "--",
        str(bodies),
        key,
    ]
    before = children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    cpu = children_cpu() - before
    (OUT / f"wrk_{name}.txt").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    statuses: Counter[int] = Counter()
    socket_errors = [0] * 5
    duration = float(seconds)
    pct: dict[str, float] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["STATUS"]:
            statuses[int(parts[1])] += int(parts[2])
        elif parts[:1] == ["SOCKET_ERRORS"]:
            socket_errors = [int(x) for x in parts[1:6]]
        elif parts[:1] == ["DURATION_US"]:
            duration = int(parts[1]) / 1e6
        elif len(parts) == 2 and parts[0] in ("50%", "99%"):
            pct[parts[0]] = _ms(parts[1])
    return WrkResult(
        statuses,
        socket_errors,
        duration,
        pct.get("50%", float("nan")),
        pct.get("99%", float("nan")),
        cpu,
    )


# -- vegeta --------------------------------------------------------------------------------


@dataclass
class VegetaResult:
    rate: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    success: float
    statuses: dict[str, int]
    errors: list[str]


def run_vegeta(vegeta: str, targets: Path, rate: int, seconds: int) -> VegetaResult:
    results = OUT / "vegeta.bin"
    cmd = [
        vegeta,
        "attack",
        "-format=json",
        f"-targets={targets}",
        f"-rate={rate}/1s",
        f"-duration={seconds}s",
        "-timeout=10s",
        "-workers=32",
        f"-output={results}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"vegeta attack failed:\n{proc.stderr}")
    report = subprocess.run(
        [vegeta, "report", "-type=json", str(results)], capture_output=True, check=True
    )
    (OUT / "vegeta_report.json").write_bytes(report.stdout)
    r = orjson.loads(report.stdout)
    lat = r["latencies"]
    return VegetaResult(
        rate=r["rate"],
        throughput=r["throughput"],
        p50_ms=lat["50th"] / 1e6,
        p90_ms=lat["90th"] / 1e6,
        p99_ms=lat["99th"] / 1e6,
        max_ms=lat["max"] / 1e6,
        success=r["success"],
        statuses=r.get("status_codes") or {},
        errors=list(r.get("errors") or [])[:5],
    )


# -- (c) the raw producer ------------------------------------------------------------------


@dataclass
class RawResult:
    events: int
    seconds: float
    errors: int
    flush_s: float
    cpu_s: float = 0.0  # this process (the producer, its librdkafka threads included)

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def run_raw_producer(
    settings: CollectorSettings, records: list[tuple[bytes, str]], seconds: int
) -> RawResult:
    options = settings.collector
    producer = make_kafka_producer(
        settings.kafka,
        **KafkaBridge.producer_config(
            options.delivery_timeout_s, options.queue_max_messages, options.linger_ms
        ),
    )
    producer.list_topics(settings.topics.raw, timeout=10)  # connect before the clock starts
    topic = settings.topics.raw
    errors = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        nonlocal errors
        if err is not None:
            errors += 1

    count = 0
    produce, poll = producer.produce, producer.poll
    cpu0 = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    while True:
        for value, key in records:
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    poll(0.01)
            count += 1
            if count % 1000 == 0:
                poll(0)
        if time.perf_counter() >= deadline:
            break
    flush_began = time.perf_counter()
    left = producer.flush(60)
    ended = time.perf_counter()
    cpu = time.process_time() - cpu0
    return RawResult(count, ended - began, errors + left, ended - flush_began, cpu)


# -- profile -------------------------------------------------------------------------------


def profile(
    py_spy: list[str], wrk: str, collector: Collector, bodies: Path, seconds: int, name: str
) -> Path | None:
    """Record one worker with py-spy (raw collapsed stacks) while wrk loads the collector."""
    workers = collector.worker_pids()
    raw = OUT / f"profile_{name}.txt"
    svg = OUT / f"profile_{name}.svg"
    load = subprocess.Popen(
        [
            wrk,
            "-t",
            "2",
            "-c",
            "64",
            "-d",
            f"{seconds + 4}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            collector.url,
            "--",
            str(bodies),
            collector.key,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(2)
    spies = [
        subprocess.Popen(
            [
                *py_spy,
                "record",
                "--pid",
                str(workers[0]),
                "--duration",
                str(seconds),
                "--rate",
                "100",
                "--gil",
                "--nolineno",
                "--format",
                "raw",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    ]
    if len(workers) > 1:
        spies.append(
            subprocess.Popen(
                [
                    *py_spy,
                    "record",
                    "--pid",
                    str(workers[1]),
                    "--duration",
                    str(seconds),
                    "--rate",
                    "100",
                    "--gil",
                    "--output",
                    str(svg),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        )
    for spy in spies:
        _, err = spy.communicate(timeout=seconds + 120)
        if spy.returncode != 0:
            say(f"  py-spy failed: {err.decode()[-500:]}")
    load.wait(timeout=seconds + 60)
    return raw if raw.exists() else None


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*)\)$")


def _short(path: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _ours(path: str) -> bool:
    p = _short(path)
    return p.startswith(("ingestion/", "contract/"))


def _area(path: str) -> str:
    p = _short(path)
    if p.startswith(("ingestion/", "contract/")):
        return p.split("/")[0] + "/ (own code)"
    top = p.split("/")[0]
    if top.endswith(".py"):
        top = top[:-3]
    return top or "?"


def summarise_profile(raw: Path, seconds: int, top: int = 12) -> list[str]:
    """Inclusive/self shares of our functions, and self time by package, from collapsed stacks."""
    incl: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    area: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = []
        for frame in stack.split(";"):
            m = _FRAME.match(frame)
            if m:
                frames.append((m.group("func"), m.group("file")))
        if not frames:
            continue
        seen = set()
        for func, path in frames:
            if _ours(path):
                name = f"{_short(path)}:{func}"
                if name not in seen:
                    seen.add(name)
                    incl[name] += count
        leaf_func, leaf_path = frames[-1]
        area[_area(leaf_path)] += count
        self_time[f"{_short(leaf_path)}:{leaf_func}"] += count
    if not total:
        return ["  (no samples)"]
    out = [
        f"  {total} samples of one worker holding the GIL (py-spy --gil, 100 Hz): the GIL was "
        f"held {total / (100 * seconds):.0%} of the {seconds}s"
    ]
    out.append("  our code, inclusive share of the worker's samples:")
    for name, c in incl.most_common(top):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    out.append("  self time by package (leaf frame):")
    for name, c in area.most_common(10):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    out.append("  top self-time functions:")
    for name, c in self_time.most_common(10):
        out.append(f"    {100 * c / total:5.1f}%  {name}")
    return out


# -- main ----------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


@dataclass
class Usage:
    """CPU seconds spent during one measurement, by whom."""

    collector: float
    kafka: float
    load: float
    other: float
    irq: float


class Meter:
    def __init__(self, collector: Collector, kafka_pid: int | None) -> None:
        self.collector, self.kafka_pid = collector, kafka_pid

    def __enter__(self) -> Meter:
        self.c0, self.k0 = self.collector.cpu(), cpu_seconds(self.kafka_pid)
        self.m0, self.i0, self.l0 = machine_busy(), kernel_irq(), children_cpu()
        return self

    def __exit__(self, *_: object) -> None:
        coll = self.collector.cpu() - self.c0
        kafka = cpu_seconds(self.kafka_pid) - self.k0
        load = children_cpu() - self.l0
        other = machine_busy() - self.m0 - coll - kafka - load
        self.usage = Usage(coll, kafka, load, other, kernel_irq() - self.i0)

    def line(self, load_name: str, per: int, unit: str) -> str:
        u, per = self.usage, max(per, 1)
        return (
            f"  CPU core-s: collector {u.collector:.1f}, kafka {u.kafka:.1f}, {load_name} "
            f"{u.load:.1f}, everything else {u.other:.1f} (irq/softirq {u.irq:.1f}); per {unit}: "
            f"collector {1e6 * u.collector / per:.1f} us, kafka {1e6 * u.kafka / per:.1f} us"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="Length of each measurement.")
    parser.add_argument("--workers", type=int, default=2, help="Collector worker processes.")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections.")
    parser.add_argument("--rate", type=int, default=1000, help="Fixed offered load (req/s).")
    parser.add_argument("--batches", type=int, default=300, help="Distinct batch bodies.")
    parser.add_argument("--batch-size", type=int, default=100, help="Events per batch.")
    parser.add_argument("--profile-seconds", type=int, default=10, help="Length of each profile.")
    parser.add_argument(
        "--phases",
        default="batch,single,rate,profile,ceiling",
        help="Comma-separated subset of batch,single,rate,profile,ceiling (default: all).",
    )
    parser.add_argument(
        "--private-kafka",
        action="store_true",
        help="Start a Kafka of this run's own (free ports, own state folder, deleted after), "
        "isolated from test suites that share the stack's Kafka at 127.0.0.1:9092.",
    )
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    unknown = phases - {"batch", "single", "rate", "profile", "ceiling"}
    if unknown:
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)

    say("== setup")
    wrk = ensure_wrk()
    vegeta = ensure_vegeta()
    py_spy = py_spy_command() if "profile" in phases else None
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout
    say(f"wrk: {wrk_version.splitlines()[0] if wrk_version else wrk}")
    say(f"vegeta: {vegeta} ({VEGETA_VERSION})")
    if "profile" in phases:
        say(f"py-spy: {'uvx --from ' + PY_SPY if py_spy else 'unavailable, no profile'}")

    private_state = OUT / "kafka-state"
    if args.private_kafka:
        os.environ["TRIBUTARY_KAFKA__BOOTSTRAP_SERVERS"] = f"127.0.0.1:{free_port()}"
        os.environ["TRIBUTARY_STACK__KAFKA_CONTROLLER_PORT"] = str(free_port())
        os.environ["TRIBUTARY_STACK__STATE_DIR"] = str(private_state)
    stack = Stack(StackSettings())
    started = stack.up(["kafka"], report=lambda m: say(f"  {m}"))
    kafka_pid = stack.status(["kafka"])[0].pid
    if kafka_pid is None:
        say("  (Kafka was not started by the stack here: its CPU is not counted)")
    settings = CollectorSettings()
    registry = SchemaRegistry.from_directory()
    collector = Collector(args.workers)
    failures: list[str] = []
    a = b = None
    v = None
    c = None
    profiles: list[tuple[str, Path | None]] = []
    try:
        data = prepare(registry, collector.url, collector.key, args.batches, args.batch_size)
        say(
            f"data: {args.batches} batch bodies x {args.batch_size} events "
            f"({data.batch_file.stat().st_size / args.batches / 1024:.1f} KiB each), "
            f"{sum(1 for _ in data.single_file.open('rb'))} single-event bodies; events from "
            f"{data.origin}"
        )
        if phases & {"batch", "single", "rate", "profile"}:
            collector.start(settings.kafka.bootstrap_servers)
            say(
                f"collector: {collector.url}, {args.workers} worker(s), pids "
                f"{collector.worker_pids()}"
            )
            say("warm-up (5s batches, 3s single events)")
            run_wrk(wrk, collector.url, data.batch_file, collector.key, 5, args.connections, "w1")
            run_wrk(wrk, collector.url, data.single_file, collector.key, 3, args.connections, "w2")

        if "batch" in phases:
            say(
                f"== (a) batches of {args.batch_size}, {args.connections} connections, "
                f"{args.seconds}s (wrk)"
            )
            with Meter(collector, kafka_pid) as meter:
                a = run_wrk(
                    wrk,
                    collector.url,
                    data.batch_file,
                    collector.key,
                    args.seconds,
                    args.connections,
                    "batch",
                )
            say(
                f"  requests {a.requests}, statuses {dict(a.statuses)}, socket errors "
                f"(connect/read/write/status/timeout) {a.socket_errors}"
            )
            say(
                f"  {a.rate(202):,.0f} req/s answered 202 -> "
                f"{a.rate(202) * args.batch_size:,.0f} events/s accepted"
            )
            say(f"  latency at saturation: p50 {a.p50_ms:.1f} ms, p99 {a.p99_ms:.1f} ms")
            say(meter.line("wrk", a.statuses[202] * args.batch_size, "event"))
            if a.bad > 0.01 * max(a.requests, 1):
                failures.append(f"(a): {a.bad} of {a.requests} requests were not 202")

        if "single" in phases:
            say(f"== (b) single events, {args.connections} connections, {args.seconds}s (wrk)")
            with Meter(collector, kafka_pid) as meter:
                b = run_wrk(
                    wrk,
                    collector.url,
                    data.single_file,
                    collector.key,
                    args.seconds,
                    args.connections,
                    "single",
                )
            say(
                f"  requests {b.requests}, statuses {dict(b.statuses)}, socket errors "
                f"{b.socket_errors}"
            )
            say(
                f"  {b.rate(202):,.0f} req/s answered 202 (latency at saturation: p50 "
                f"{b.p50_ms:.1f} ms, p99 {b.p99_ms:.1f} ms)"
            )
            say(meter.line("wrk", b.statuses[202], "request"))
            if b.bad > 0.01 * max(b.requests, 1):
                failures.append(f"(b): {b.bad} of {b.requests} requests were not 202")

        if "rate" in phases:
            say(f"== (b) fixed rate {args.rate} req/s, single events, {args.seconds}s (vegeta)")
            with Meter(collector, kafka_pid) as meter:
                v = run_vegeta(vegeta, data.vegeta_targets, args.rate, args.seconds)
            say(
                f"  offered {v.rate:,.0f} req/s, served {v.throughput:,.0f} req/s, success "
                f"{100 * v.success:.2f}%, statuses {v.statuses}"
            )
            say(
                f"  latency p50 {v.p50_ms:.2f} ms, p90 {v.p90_ms:.2f} ms, p99 {v.p99_ms:.2f} ms, "
                f"max {v.max_ms:.1f} ms"
            )
            say(meter.line("vegeta", int(v.statuses.get("202", 0)), "request"))
            if v.errors:
                say(f"  first errors: {v.errors[:2]}")
            if v.success < 0.99:
                failures.append(f"(b) fixed rate: only {100 * v.success:.1f}% succeeded")

        if py_spy:
            for name, bodies in (("batch", data.batch_file), ("single", data.single_file)):
                say(f"== profile: {name} load, {args.profile_seconds}s, py-spy on one worker")
                profiles.append(
                    (name, profile(py_spy, wrk, collector, bodies, args.profile_seconds, name))
                )
    finally:
        collector.stop()

    try:
        if "ceiling" in phases:
            say(f"== (c) raw confluent-kafka producer, {args.seconds}s + final flush")
            k0 = cpu_seconds(kafka_pid)
            c = run_raw_producer(settings, data.records, args.seconds)
            c_kafka = cpu_seconds(kafka_pid) - k0
            say(
                f"  {c.events:,} events in {c.seconds:.2f}s (final flush {c.flush_s:.2f}s), "
                f"{c.errors} errors -> {c.rate:,.0f} events/s"
            )
            say(
                f"  CPU core-s: producer {c.cpu_s:.1f}, kafka {c_kafka:.1f}; per event: producer "
                f"{1e6 * c.cpu_s / c.events:.1f} us, kafka {1e6 * c_kafka / c.events:.1f} us"
            )
            if c.errors:
                failures.append(f"(c): {c.errors} messages not delivered")
    finally:
        if started:
            stack.down(started, report=lambda m: say(f"  {m}"))
        if args.private_kafka:
            shutil.rmtree(private_state, ignore_errors=True)

    say()
    say("== summary")
    say(f"machine: nproc {os.cpu_count()}, {cpu_model()}; Python {platform.python_version()}")
    say("note: wrk/vegeta, the collector and Kafka all share these cores (nothing is pinned)")
    say(f"collector: {args.workers} worker(s); Kafka at {settings.kafka.bootstrap_servers}")

    def row(name: str, value: str, ok: bool | None = None, target: str = "") -> None:
        verdict = "" if ok is None else ("ok   " if ok else "MISS ")
        say(f"  {name:<28}{value:>14}   {verdict}{target}")

    eps = a.rate(202) * args.batch_size if a else None
    if eps is not None:
        row(
            "(a) batch events/s (202)",
            f"{eps:,.0f}",
            eps >= TARGET_BATCH_EPS,
            f"target >= {TARGET_BATCH_EPS:,}",
        )
    if c:
        row("(c) raw producer events/s", f"{c.rate:,.0f}")
    if eps is not None and c:
        ratio = eps / c.rate
        row(
            "(a)/(c)",
            f"{ratio:.1%}",
            ratio >= TARGET_BATCH_SHARE,
            f"target >= {TARGET_BATCH_SHARE:.0%}",
        )
    if b:
        row(
            "(b) single req/s (202)",
            f"{b.rate(202):,.0f}",
            b.rate(202) >= TARGET_SINGLE_RPS,
            f"target >= {TARGET_SINGLE_RPS:,}",
        )
    if v:
        row(f"(b) p50 at {args.rate} req/s", f"{v.p50_ms:.2f} ms")
        row(
            f"(b) p99 at {args.rate} req/s",
            f"{v.p99_ms:.2f} ms",
            v.p99_ms < TARGET_P99_MS,
            f"target < {TARGET_P99_MS:.0f} ms",
        )
    for name, raw in profiles:
        say(f"profile ({name} load), {raw}:")
        for line in summarise_profile(raw, args.profile_seconds) if raw else ["  (no profile)"]:
            say(line)
    say(f"files: {OUT}")
    if failures:
        say("FAILED: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
