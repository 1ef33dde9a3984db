#!/usr/bin/env python3
"""The floor under bench/subscriptions.py: the same subscriber client and the same events, but
a server that does nothing for an event except write one short message to every socket.

    python3 bench/subscriptions_floor.py                 # both modes, 1,000 and 10,000 subscribers
    python3 bench/subscriptions_floor.py --modes raw --subscribers 10000 --events 30 --no-build

The server is dishpatch-fanout-floor (bench/baseline), on as many threads as dishpatch has
actix workers (one per core): no database, no GraphQL, each subscribed socket is sent its own
`next` message per event. `--modes` (comma-separated):
- `tasks`: a plain WebSocket server, tokio-tungstenite with a task per socket on tokio's
  multi-threaded runtime; each socket's task takes the event from a broadcast channel.
- `raw`: the floor proper: frames by hand, and for an event each thread walks its sockets and
  makes one `write` call for each, with no task woken.
What it reports is what the machine's loopback sockets and the client cost by themselves (and,
for `tasks`, a task per socket): dishpatch's numbers in bench/subscriptions.py cannot be lower
than `raw`'s, and the difference is what dishpatch's own fan-out costs.

Reported per subscriber count, in the same columns as bench/subscriptions.py: the latency from
the moment the event was handed to the sockets' tasks to the moment the median client and the
last client received it (p50 over the events, and p99 and max for the last client), the
server's and the client's CPU per event (utime + stime, 10 ms ticks), and the same idle window.
Missing or duplicated deliveries must be 0.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as loadbench  # noqa: E402
import subscriptions as subs  # noqa: E402
from run import Server, log  # noqa: E402

PORT = 18190


def build_floor() -> Path:
    log(f"building dishpatch-fanout-floor in release mode (target {subs.TARGET})")
    loadbench.run("cargo", "build", "--release", "--locked", "-p", "dishpatch-baseline", "--bin",
                  "dishpatch-fanout-floor", cwd=subs.ROOT, env={**os.environ, "CARGO_TARGET_DIR": str(subs.TARGET)})
    return subs.TARGET / "release" / "dishpatch-fanout-floor"


class Floor:
    """The floor server, and the `sent` lines it prints."""

    def __init__(self, binary: Path, workers: int, mode: str):
        self.process = subprocess.Popen(
            [str(binary), "--listen", f"127.0.0.1:{PORT}", "--workers", str(workers), "--mode", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.server = Server("floor", self.process, f"http://127.0.0.1:{PORT}")
        self.lines: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def line(self, kind: str, timeout: float = 10) -> dict:
        line = self.lines.get(timeout=timeout)
        if line is None or line.get("type") != kind:
            raise subs.Failed(f"the floor server printed {line!r}, not {kind}")
        return line

    def event(self) -> dict:
        assert self.process.stdin
        self.process.stdin.write("event\n")
        self.process.stdin.flush()
        return self.line("sent")

    def stop(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def measure(binary: Path, mode: str, n: int, args) -> subs.Result:
    result = subs.Result(f"floor, {mode}", n, args.events)
    floor = Floor(binary, args.workers, mode)
    subscribers = None
    try:
        floor.line("listening")
        subscribers = subs.Subscribers(args.client_command, [f"ws://127.0.0.1:{PORT}/graphql"], n, args.batch,
                                       "floor", "floor", 900)
        ready = subscribers.wait("ready", 120 + n * 0.03)
        if ready is None or not ready["open"]:
            raise subs.Failed(f"the subscribers were not ready: {ready}")
        result.subscribe_s = ready["ms"] / 1000
        warm = floor.event()
        if not subscribers.wait_complete([warm["key"]], 5 + n / 1000):
            result.problems.append("the warm-up event did not reach every client")
        subscribers.send("mark")
        subscribers.wait("marked", 10)
        cpu_before = floor.server.cpu_seconds()
        started = time.monotonic()
        events = []
        for index in range(args.events):
            if index:
                time.sleep(args.pause)
            sent = floor.event()
            events.append(subs.Event(sent["key"], sent["t"], sent["t"]))
        keys = [event.key for event in events]
        if not subscribers.wait_complete(keys, 30 + n / 500):
            result.problems.append("some events did not reach every client")
        cpu_after = floor.server.cpu_seconds()
        window = time.monotonic() - started
        subscribers.send("cpu")
        client_cpu = subscribers.wait("cpu", 10)
        idle_window = min(window, args.max_idle_window)
        idle_before = floor.server.cpu_seconds()
        time.sleep(idle_window)
        idle_after = floor.server.cpu_seconds()
        result.cpu_ms_per_event = [(cpu_after - cpu_before) * 1000 / args.events]
        result.idle_cpu_ms_per_event = [(idle_after - idle_before) * (window / idle_window) * 1000 / args.events]
        result.peak_rss_mb = [floor.server.peak_rss_mb()]
        if client_cpu:
            result.client_cpu_ms_per_event = (client_cpu["user_ms"] + client_cpu["system_ms"]) / args.events
        summary = subscribers.finish()
        if summary is None:
            raise subs.Failed("the subscribers printed no summary")
        subs.analyse(result, events, {warm["key"]}, summary)
    finally:
        if subscribers is not None:
            subscribers.close()
        floor.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="tasks,raw", help="tasks, raw, or both (comma-separated)")
    parser.add_argument("--subscribers", default="1000,10000", help="subscriber counts, comma-separated")
    parser.add_argument("--events", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between events")
    parser.add_argument("--batch", type=int, default=200, help="sockets opened at once")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="the floor server's threads")
    parser.add_argument("--max-idle-window", type=float, default=60)
    parser.add_argument("--no-build", action="store_true", help="use the release binaries as they are")
    args = parser.parse_args()
    subs.raise_open_files()
    if args.no_build:
        binary = subs.TARGET / "release" / "dishpatch-fanout-floor"
        client = subs.TARGET / "release" / "dishpatch-subscribers"
    else:
        binary, client = build_floor(), subs.build_client()
    args.client_command = [str(client)]
    results = []
    for mode in args.modes.split(","):
        for n in (int(n) for n in args.subscribers.split(",")):
            try:
                results.append(measure(binary, mode, n, args))
            except subs.Failed as error:
                results.append(subs.Result(f"floor, {mode}", n, args.events, problems=[f"not measured: {error}"]))
    print(f"dishpatch-fanout-floor, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {args.workers} server "
          f"threads, {args.events} events {args.pause * 1000:.0f} ms apart; latencies from the broadcast; the "
          f"placeOrder column does not apply\n")
    print(subs.table(results))
    problems = [(r, p) for r in results for p in r.problems]
    for r, problem in problems:
        print(f"- **FAILURE** ({r.backend}, {r.subscribers:,} subscribers): {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
