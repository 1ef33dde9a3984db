#!/usr/bin/env python3
"""dishpatch's subscription benchmark: N WebSocket subscribers on one live feed.

    python3 bench/subscriptions.py          # SQLite and PostgreSQL, 1,000 and 10,000 subscribers
    python3 bench/subscriptions.py --backends sqlite --subscribers 1000 --events 30
    python3 bench/subscriptions.py --binary ~/.cache/dishpatch-ci/target/debug/dishpatch \\
        --subscribers 200 --events 5          # a quick check with another build

It builds dishpatch in release mode (`--no-build`, or `--binary PATH`, to skip that), seeds the
demo data set into a fresh database per backend (bench/.data/subscriptions.db; the PostgreSQL
database `dishpatch_bench_subs`), and for each case starts fresh servers: one on SQLite, two
replicas over the same database on PostgreSQL. The subscriber client opens N
`graphql-transport-ws` sockets as the demo owner, spread evenly over the replicas, each
subscribed to `restaurantOrders` of Trattoria Roma. Warm-up orders go first until one reaches
every client (so every subscription is known to be live); then the demo customer places E
orders over HTTP on the first replica, one at a time, with a pause between them. Each order is
one event, `<order id>:1`.

Reported per case: the latency from the moment the mutation's HTTP response arrived to the
moment the median client received the event (p50 over the events) and the last client did
(p50, p99 and max over the events; by nearest rank, p99 is the max below 100 events). Server CPU per
event (utime + stime from /proc, in 10 ms ticks: at 30 events, 0.33 ms steps) is measured from
just before the first event until the last event reached every client, divided by E; it
includes the placeOrder requests themselves (about 1.5 ms each in bench/RESULTS.md) and what
the open sockets cost anyway (pings): "idle CPU ms/event" is the CPU of an equally long window
without events right after, divided by E, so the events' own cost is the difference. Then the
client's own CPU per event (it shares the cores with the server, and the last client's
latency includes the client taking N messages in turn), the servers' peak RSS (VmHWM, fresh servers
per case), the placeOrder round trip (when it grows, the server is still busy with the
previous event) and how long opening and subscribing every socket took. Missing or duplicated
deliveries must be 0: anything else, and any socket closed or error sent by the server, is a
failure, said loudly, and the exit status is 1. `--json FILE` keeps every measurement.

Settings for the run only (the environment of the servers): the bench's dishpatch-bench.toml
(production, warn logs, rate limits off), plus DISHPATCH_RATE_LIMIT__ENABLED=false (each subscription
spends its complexity, 4, from its user's budget of 200,000 a minute: 10,000 of one user fit,
but warm-ups, repeated cases and larger counts must not depend on it),
DISHPATCH_AUTH__SIGNING_KEYS (one key shared by both replicas and `dishpatch token`), and
DISHPATCH_SHUTDOWN_DRAIN_SECS=0 (stop at once between cases). dishpatch has no per-address
connection limit; actix-web accepts 25,000 connections per worker. The open-file limit is
raised to the hard limit for this process and the children it starts.

The client is dishpatch-subscribers (bench/baseline: one thread of Rust, built in release mode
with the server, or taken as it is with --no-build/--binary), or with `--client node`
bench/subscribers.mjs; both take the same arguments and print the same lines.

Needs: for `--client node`, Node 20+ with tests/clients' packages (`npm ci --prefix
tests/clients`; the script runs it when they are missing); PostgreSQL on 127.0.0.1:5432 (user postgres, trust) for the
PostgreSQL half. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as loadbench  # noqa: E402  bench/run.py: servers, /proc readings, HTTP helpers
from run import Server, log, post, wait_ready  # noqa: E402

ROOT = loadbench.ROOT
BENCH = loadbench.BENCH
DATA = loadbench.DATA
CONFIG = BENCH / "dishpatch-bench.toml"
SUBSCRIBERS_JS = BENCH / "subscribers.mjs"
CLIENTS = ROOT / "tests" / "clients"
_CI_TARGET = Path.home() / ".cache" / "dishpatch-ci" / "target"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or (_CI_TARGET if _CI_TARGET.is_dir() else ROOT / "target"))
PG_ADMIN = loadbench.PG_ADMIN
PG_DB = "dishpatch_bench_subs"
BASE_PORT = 18090
OWNER, CUSTOMER = "owner@dishpatch.test", "customer@dishpatch.test"  # seed::DEMO_OWNER, DEMO_CUSTOMER
RESTAURANT_SLUG = "trattoria-roma"
SIGNING_KEYS = json.dumps([{"kid": "bench-subscriptions", "secret": "a-signing-key-for-the-subscription-benchmark-0123456789"}])
PLACE_ORDER = """mutation PlaceOrder($input: PlaceOrderInput!) {
  placeOrder(input: $input) { order { id status version } userErrors { field message code } }
}"""


class Failed(Exception):
    """A case could not be measured."""


class Deadline(Exception):
    """The whole run took longer than --deadline."""


# --- servers and data ------------------------------------------------------------------------


def build() -> Path:
    log(f"building dishpatch in release mode (target {TARGET})")
    loadbench.run("cargo", "build", "--release", "--locked", "-p", "dishpatch", cwd=ROOT,
                  env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    return TARGET / "release" / "dishpatch"


def build_client() -> Path:
    log(f"building the subscriber client in release mode (target {TARGET})")
    loadbench.run("cargo", "build", "--release", "--locked", "-p", "dishpatch-baseline", "--bin",
                  "dishpatch-subscribers", cwd=ROOT, env={**os.environ, "CARGO_TARGET_DIR": str(TARGET)})
    return TARGET / "release" / "dishpatch-subscribers"


def server_env() -> dict[str, str]:
    return {
        **os.environ,
        "DISHPATCH_AUTH__SIGNING_KEYS": SIGNING_KEYS,
        "DISHPATCH_RATE_LIMIT__ENABLED": "false",
        "DISHPATCH_SHUTDOWN_DRAIN_SECS": "0",
        # The demo's photos, in bench/.data (on PostgreSQL they would go to ./media).
        "DISHPATCH_MEDIA__DIR": str(DATA / "subscriptions.media"),
    }


def dishpatch(binary: Path, url: str, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(binary), "--config", str(CONFIG), "--database-url", url, "--log-format", "json", *args],
        check=True, env=server_env(), timeout=600, **kwargs,
    )


def prepare_database(binary: Path, backend: str) -> str:
    """A fresh database with the demo data; its URL."""
    DATA.mkdir(parents=True, exist_ok=True)
    if backend == "sqlite":
        path = DATA / "subscriptions.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        url = f"sqlite://{path}?mode=rwc"
    elif backend == "postgres":
        admin = ["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c"]
        quiet = {**os.environ, "PGOPTIONS": "-c client_min_messages=warning"}
        subprocess.run([*admin, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"], check=True, timeout=60, env=quiet)
        subprocess.run([*admin, f"CREATE DATABASE {PG_DB}"], check=True, timeout=60, env=quiet)
        url = PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DB
    else:
        raise SystemExit(f"unknown backend {backend!r}: sqlite or postgres")
    log(f"{backend}: seeding the demo data")
    dishpatch(binary, url, "seed", "--demo", capture_output=True)
    return url


def token(binary: Path, url: str, user: str) -> str:
    return dishpatch(binary, url, "token", "--user", user, "--ttl", "6h", capture_output=True, text=True).stdout.strip()


@dataclass
class Replica:
    server: Server
    port: int
    log_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    def log_problems(self) -> list[str]:
        """WARN and ERROR lines of its log."""
        lines = self.log_path.read_text(errors="replace").splitlines() if self.log_path.exists() else []
        return [line for line in lines if '"WARN"' in line or '"ERROR"' in line or "panicked" in line]


def start_replica(binary: Path, url: str, port: int, log_path: Path) -> Replica:
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            [str(binary), "--config", str(CONFIG), "--database-url", url, "--log-format", "json",
             "serve", "--listen", f"127.0.0.1:{port}"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=server_env(),
        )
    replica = Replica(Server(f"replica on {port}", process, f"http://127.0.0.1:{port}"), port, log_path)
    try:
        wait_ready(replica.server.url, process)
    except SystemExit as error:
        replica.server.stop()
        raise Failed(f"{error}; its log: {log_path}") from None
    return replica


# --- the subscribers (Rust or Node) ----------------------------------------------------------


class Subscribers:
    """The subscriber client (dishpatch-subscribers or bench/subscribers.mjs), and the lines it prints."""

    def __init__(self, client: list[str], urls: list[str], count: int, batch: int, restaurant: str,
                 owner_token: str, max_seconds: int):
        self.lines: queue.Queue[dict | None] = queue.Queue()
        self.complete: dict[str, float] = {}  # key -> time it reached every client
        self.process = subprocess.Popen(
            [*client, "--urls", ",".join(urls), "--count", str(count),
             "--batch", str(batch), "--restaurant", restaurant, "--max-seconds", str(max_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            env={**os.environ, "BENCH_TOKEN": owner_token},
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                log(f"subscribers: {line.rstrip()}")
        self.lines.put(None)

    def send(self, command: str) -> None:
        assert self.process.stdin
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def wait(self, kind: str, timeout: float, until=None) -> dict | None:
        """The next line of type `kind` (noting `all` lines on the way), or None after `timeout`
        or when the process ended; with `until`, returns as soon as `until()` holds."""
        deadline = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                line = self.lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self.lines.put(None)  # stays ended
                return None
            if line.get("type") == "all":
                self.complete[line["key"]] = line["t"]
            if line.get("type") == kind:
                return line

    def wait_complete(self, keys: list[str], timeout: float) -> bool:
        self.wait("-", timeout, until=lambda: all(key in self.complete for key in keys))
        return all(key in self.complete for key in keys)

    def finish(self, timeout: float = 60) -> dict | None:
        self.send("done")
        summary = self.wait("summary", timeout)
        self.close()
        return summary

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# --- one case --------------------------------------------------------------------------------


@dataclass
class Event:
    key: str
    sent_ms: float
    answered_ms: float


@dataclass
class Result:
    backend: str
    subscribers: int
    events: int
    median_client_p50_ms: float = float("nan")
    last_client_p50_ms: float = float("nan")
    last_client_p99_ms: float = float("nan")
    last_client_max_ms: float = float("nan")
    cpu_ms_per_event: list[float] = field(default_factory=list)  # per replica
    idle_cpu_ms_per_event: list[float] = field(default_factory=list)  # per replica, same window
    client_cpu_ms_per_event: float = float("nan")
    peak_rss_mb: list[float] = field(default_factory=list)  # per replica
    subscribe_s: float = float("nan")
    place_order_p50_ms: float = float("nan")
    missing: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    detail: dict = field(default_factory=dict)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def place_order(replica: Replica, customer_token: str, restaurant: str, items: list[str]) -> Event:
    body = json.dumps({"query": PLACE_ORDER, "operationName": "PlaceOrder", "variables": {"input": {
        "restaurantId": restaurant,
        "lines": [{"menuItemId": item, "quantity": 1} for item in items],
        "deliveryAddress": "Torstrasse 1, Berlin",
        "deliveryLocation": {"latitude": 52.53, "longitude": 13.40},
        "idempotencyKey": f"subs-{uuid.uuid4()}",
    }}}, separators=(",", ":"))
    sent = time.time() * 1000
    answer, _ = post(replica.server.url, body, {"Authorization": f"Bearer {customer_token}"})
    answered = time.time() * 1000
    payload = json.loads(answer)
    placed = (payload.get("data") or {}).get("placeOrder") or {}
    order = placed.get("order")
    if payload.get("errors") or placed.get("userErrors") or not order:
        raise Failed(f"placeOrder failed: {answer[:500]!r}")
    return Event(f"{order['id']}:{order['version']}", sent, answered)


def menu(replica: Replica) -> tuple[str, list[str]]:
    answer, _ = post(replica.server.url, json.dumps(
        {"query": '{ restaurant(slug: "%s") { id menu { items { id available } } } }' % RESTAURANT_SLUG}))
    restaurant = json.loads(answer)["data"]["restaurant"]
    items = [item["id"] for item in restaurant["menu"]["items"] if item["available"]][:2]
    return restaurant["id"], items


def measure(binary: Path, backend: str, url: str, tokens: dict[str, str], n: int, args) -> Result:
    result = Result(backend, n, args.events)
    replicas: list[Replica] = []
    subscribers: Subscribers | None = None
    ready_timeout = 120 + n * 0.03
    settle_timeout = 30 + n / 500
    node_seconds = int(ready_timeout + 10 * (10 + n / 1000) + args.events * (args.pause + 5)
                       + 2 * settle_timeout + 300)
    try:
        for index in range(1 if backend == "sqlite" else 2):
            port = BASE_PORT + index
            replicas.append(start_replica(binary, url, port, DATA / f"subscriptions-{backend}-{n}-{index + 1}.log"))
        restaurant, items = menu(replicas[0])

        log(f"  {backend} n={n}: opening {n} subscribers on {len(replicas)} server(s)")
        subscribers = Subscribers(args.client_command, [r.ws_url for r in replicas], n, args.batch, restaurant, tokens["owner"], node_seconds)
        ready = subscribers.wait("ready", ready_timeout)
        if ready is None:
            raise Failed(f"the subscribers were not ready within {ready_timeout:.0f} s")
        result.subscribe_s = ready["ms"] / 1000
        if not ready["open"]:
            raise Failed(f"no client could subscribe: {ready['failures']}")
        if ready["failed"]:
            result.problems.append(f"{ready['failed']} of {n} clients could not subscribe: {ready['failures']}")
        log(f"  {backend} n={n}: {ready['subscribed']} subscribed in {result.subscribe_s:.1f} s")

        # Warm-up: a subscription's resolver runs some time after its `subscribe` message;
        # an event that reached every client proves every subscription listens.
        warm = []
        for _ in range(10):
            warm.append(place_order(replicas[0], tokens["customer"], restaurant, items))
            if subscribers.wait_complete([warm[-1].key], 5 + n / 1000):
                break
        else:
            result.problems.append(f"no warm-up event reached every client ({len(warm)} tried)")
        warm_keys = {event.key for event in warm}

        # The measured window: just before the first event until the last reached every client.
        subscribers.send("mark")
        subscribers.wait("marked", 10)
        cpu_before = [r.server.cpu_seconds() for r in replicas]
        started = time.monotonic()
        events: list[Event] = []
        for index in range(args.events):
            if index:
                time.sleep(args.pause)
            events.append(place_order(replicas[0], tokens["customer"], restaurant, items))
        keys = [event.key for event in events]
        if not subscribers.wait_complete(keys, settle_timeout):
            late = [key for key in keys if key not in subscribers.complete]
            result.problems.append(f"{len(late)} events had not reached every client {settle_timeout:.0f} s after the last was placed")
        cpu_after = [r.server.cpu_seconds() for r in replicas]
        window = time.monotonic() - started
        subscribers.send("cpu")
        client_cpu = subscribers.wait("cpu", 10)

        # The same window without events: what the open sockets cost by themselves.
        idle_window = min(window, args.max_idle_window)
        idle_before = [r.server.cpu_seconds() for r in replicas]
        time.sleep(idle_window)
        idle_after = [r.server.cpu_seconds() for r in replicas]
        result.peak_rss_mb = [r.server.peak_rss_mb() for r in replicas]
        for before, after, idle0, idle1 in zip(cpu_before, cpu_after, idle_before, idle_after):
            result.cpu_ms_per_event.append((after - before) * 1000 / args.events)
            result.idle_cpu_ms_per_event.append((idle1 - idle0) * (window / idle_window) * 1000 / args.events)
        if client_cpu:
            result.client_cpu_ms_per_event = (client_cpu["user_ms"] + client_cpu["system_ms"]) / args.events

        summary = subscribers.finish()
        if summary is None:
            raise Failed("the subscribers printed no summary")
        analyse(result, events, warm_keys, summary)
        result.detail = {"window_s": window, "idle_window_s": idle_window, "ready": ready,
                         "events": [vars(event) for event in events], "summary": summary}
    finally:
        if subscribers is not None:
            subscribers.close()
        for replica in replicas:
            replica.server.stop()
        for replica in replicas:
            problems = replica.log_problems()
            if problems:
                result.notes.append(f"{replica.log_path.name}: {len(problems)} WARN/ERROR lines, first: {problems[0][:300]}")
    return result


def analyse(result: Result, events: list[Event], warm_keys: set[str], summary: dict) -> None:
    n = result.subscribers
    received = summary["events"]
    medians, lasts = [], []
    for event in events:
        got = received.get(event.key)
        if got is None:
            result.missing += n
            continue
        result.missing += n - got["count"]
        result.duplicates += got["dups"]
        medians.append(got["median"] - event.answered_ms)
        lasts.append(got["max"] - event.answered_ms)
    for key, got in received.items():
        if key in warm_keys:
            result.duplicates += got["dups"]
        elif key not in {event.key for event in events}:
            result.problems.append(f"an event nobody placed arrived: {key} at {got['count']} clients")
    result.median_client_p50_ms = percentile(medians, 50)
    result.last_client_p50_ms = percentile(lasts, 50)
    result.last_client_p99_ms = percentile(lasts, 99)
    result.last_client_max_ms = max(lasts, default=float("nan"))
    result.place_order_p50_ms = percentile([event.answered_ms - event.sent_ms for event in events], 50)
    if any(value < 0 for value in medians):
        result.notes.append("some events reached the median client before the placeOrder response arrived (negative latency)")
    if summary["closes"]:
        result.problems.append(f"sockets closed by the server after subscribing, by close code: {summary['closes']}")
    if summary["errors"] or summary["completes"] or summary["unparsable"]:
        result.problems.append(
            f"{summary['errors']} GraphQL errors, {summary['completes']} streams completed by the server, "
            f"{summary['unparsable']} unparsable messages; samples: {json.dumps(summary['samples'])[:600]}")
    if result.missing or result.duplicates:
        result.problems.append(f"{result.missing} deliveries missing, {result.duplicates} duplicated")


# --- report ----------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    def ms(value: float) -> str:
        return "n/a" if value != value else f"{value:.1f}"

    def per_replica(values: list[float], digits: int) -> str:
        if not values:
            return "n/a"
        total = f"{sum(values):.{digits}f}"
        return total if len(values) == 1 else f"{total} ({' + '.join(f'{v:.{digits}f}' for v in values)})"

    lines = [
        "| backend | subscribers | events | latency p50 ms (median client) | last client p50 ms | "
        "last client p99 ms | last client max ms | server CPU ms/event | idle CPU ms/event | "
        "client CPU ms/event | peak RSS MB | missing/dup | placeOrder p50 ms | subscribe s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in results:
        backend = f"{r.backend} (2 replicas)" if r.backend == "postgres" else r.backend
        verdict = f"{r.missing}/{r.duplicates}" + (" FAILED" if r.problems else "")
        lines.append(
            f"| {backend} | {r.subscribers:,} | {r.events} | {ms(r.median_client_p50_ms)} | {ms(r.last_client_p50_ms)} | "
            f"{ms(r.last_client_p99_ms)} | {ms(r.last_client_max_ms)} | {per_replica(r.cpu_ms_per_event, 2)} | "
            f"{per_replica(r.idle_cpu_ms_per_event, 2)} | {ms(r.client_cpu_ms_per_event)} | "
            f"{per_replica(r.peak_rss_mb, 0)} | {verdict} | {ms(r.place_order_p50_ms)} | {ms(r.subscribe_s)} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def ensure_node_clients() -> None:
    if not (CLIENTS / "node_modules" / "ws").is_dir():
        log("tests/clients has no node_modules; running npm ci --prefix tests/clients")
        subprocess.run(["npm", "ci", "--prefix", str(CLIENTS)], check=True, timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--subscribers", default="1000,10000", help="subscriber counts, comma-separated")
    parser.add_argument("--events", type=int, default=30, help="measured events (orders placed) per case")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between events")
    parser.add_argument("--batch", type=int, default=200, help="sockets opened at once")
    parser.add_argument("--max-idle-window", type=float, default=60, help="longest idle CPU window, seconds")
    parser.add_argument("--binary", type=Path, help="this dishpatch binary instead of building one")
    parser.add_argument("--no-build", action="store_true", help=f"use {TARGET}/release/dishpatch as it is")
    parser.add_argument("--deadline", type=int, default=3600, help="the whole run stops after this many seconds")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--client", choices=["rust", "node"], default="rust",
                        help="the subscribers: dishpatch-subscribers (one thread of Rust, built with the "
                             "benchmark) or bench/subscribers.mjs (Node)")
    args = parser.parse_args()
    if args.events < 1:
        parser.error("--events must be at least 1")

    def on_alarm(*_):
        raise Deadline(f"the run took longer than --deadline {args.deadline} s")

    def on_terminate(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_terminate)
    signal.alarm(args.deadline)

    open_files = raise_open_files()
    counts = [int(n) for n in args.subscribers.split(",")]
    per_process = max(counts)
    if open_files < per_process + 200:
        log(f"warning: the open-file limit is {open_files}; {per_process:,} sockets in one process may not fit")
    if args.client == "node":
        ensure_node_clients()
        args.client_command = ["node", str(SUBSCRIBERS_JS)]
    else:
        client = build_client() if not args.no_build else TARGET / "release" / "dishpatch-subscribers"
        if not client.is_file():
            raise SystemExit(f"no subscriber client at {client}; run without --no-build, or "
                             f"cargo build --release -p dishpatch-baseline --bin dishpatch-subscribers")
        args.client_command = [str(client)]
    if args.binary:
        binary = args.binary.expanduser().resolve()
    elif args.no_build:
        binary = TARGET / "release" / "dishpatch"
    else:
        binary = build()
    if not binary.is_file():
        raise SystemExit(f"no dishpatch binary at {binary}")

    results: list[Result] = []
    try:
        for backend in args.backends.split(","):
            url = prepare_database(binary, backend)
            tokens = {"owner": token(binary, url, OWNER), "customer": token(binary, url, CUSTOMER)}
            for n in counts:
                try:
                    result = measure(binary, backend, url, tokens, n, args)
                except Failed as error:
                    result = Result(backend, n, args.events, problems=[f"not measured: {error}"])
                results.append(result)
                log(f"  {backend} n={n}: last client p50 {result.last_client_p50_ms:.1f} ms, "
                    f"p99 {result.last_client_p99_ms:.1f} ms, {result.missing} missing, {result.duplicates} duplicated")
                for problem in result.problems:
                    log(f"  FAILURE ({backend}, {n}): {problem}")
    except Deadline as error:
        log(f"FAILURE: {error}; reporting what was measured")
        results.append(Result("-", 0, 0, problems=[str(error)]))
    finally:
        signal.alarm(0)

    machine = f"{os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * loadbench.PAGE / 2**30:.0f} GiB"
    print(f"dishpatch subscription benchmark, {time.strftime('%Y-%m-%d')}, {machine}, binary {binary}, client {args.client}, "
          f"{args.events} events {args.pause * 1000:.0f} ms apart per case; latencies from the placeOrder "
          f"response to the event's arrival; CPU per event includes the placeOrder request; "
          f"PostgreSQL: per replica in parentheses\n")
    print(table(results))
    problems = [(r, p) for r in results for p in r.problems]
    notes = [(r, note) for r in results for note in r.notes]
    if problems or notes:
        print()
    for r, problem in problems:
        print(f"- **FAILURE** ({r.backend}, {r.subscribers:,} subscribers): {problem}")
    for r, note in notes:
        print(f"- note ({r.backend}, {r.subscribers:,} subscribers): {note}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([vars(r) for r in results], indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
