#!/usr/bin/env python3
"""dishpatch's load benchmark, side by side with the hand-written baseline.

    python3 bench/run.py                  # everything: SQLite and PostgreSQL, 1/16/64 connections
    python3 bench/run.py --backends sqlite --duration 5 --connections 16

It builds both servers in release mode, seeds `dishpatch seed --demo --scale 100` once per
backend (kept in bench/.data and in the PostgreSQL database `dishpatch_bench`; `--reseed`
starts over), checks that the baseline answers Q1-Q3 with the very bytes dishpatch sends, then
drives each server with wrk (a warm-up, then a measured run per case) and prints one Markdown
table. Errors are counted from the response bodies: a GraphQL error or a user error in a 200 is
an error. CPU time and peak RSS are read from /proc for the server process alone.

Needs: wrk (`apt-get install wrk`; the script tries), PostgreSQL on 127.0.0.1:5432 for the
PostgreSQL half. Python 3.11, standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DATA = BENCH / ".data"
QUERIES = BENCH / "queries"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DB = "dishpatch_bench"
DISHPATCH_PORT, BASELINE_PORT = 18080, 18081
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, check=True, **kwargs)


# --- servers ---------------------------------------------------------------------------------


def build() -> tuple[Path, Path]:
    log("building release binaries (dishpatch, dishpatch-baseline)")
    run("cargo", "build", "--release", "--locked", "-p", "dishpatch", "-p", "dishpatch-baseline", cwd=ROOT)
    return TARGET / "release" / "dishpatch", TARGET / "release" / "dishpatch-baseline"


def database_url(backend: str) -> str:
    if backend == "sqlite":
        return f"sqlite://{DATA / 'bench-scale100.db'}?mode=rwc"
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + PG_DB


def dishpatch_env(backend: str) -> dict[str, str]:
    """dishpatch's environment: photos beside the SQLite file, and for PostgreSQL in
    bench/.data (by default they would go to ./media in the working directory)."""
    if backend == "sqlite":
        return dict(os.environ)
    return {**os.environ, "DISHPATCH_MEDIA__DIR": str(DATA / f"{backend}.media")}


def seed(dishpatch: Path, backend: str, scale: int, reseed: bool) -> None:
    url = database_url(backend)
    marker = DATA / f"{backend}-scale{scale}.seeded"
    if marker.exists() and not reseed:
        log(f"{backend}: reusing the seeded data set ({marker.name})")
        return
    DATA.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(DATA / "bench-scale100.db") + suffix).unlink(missing_ok=True)
    else:
        admin = ["psql", PG_ADMIN, "-q", "-v", "ON_ERROR_STOP=1", "-c"]
        run(*admin, f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        run(*admin, f"CREATE DATABASE {PG_DB}")
    log(f"{backend}: seeding --scale {scale}")
    run(str(dishpatch), "--database-url", url, "--log-format", "json", "seed", "--demo", "--scale", str(scale),
        env=dishpatch_env(backend))
    marker.touch()


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    url: str

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def reset_peak_rss(self) -> None:
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def wait_ready(url: str, process: subprocess.Popen) -> None:
    for _ in range(300):
        if process.poll() is not None:
            raise SystemExit(f"the server at {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers (the baseline has no /healthz)
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"the server at {url} did not come up")


def start_dishpatch(binary: Path, backend: str, config: Path) -> Server:
    url = f"http://127.0.0.1:{DISHPATCH_PORT}"
    process = subprocess.Popen(
        [str(binary), "--config", str(config), "--database-url", database_url(backend),
         "--log-format", "json", "serve", "--listen", f"127.0.0.1:{DISHPATCH_PORT}"],
        stdout=subprocess.DEVNULL, env=dishpatch_env(backend),
    )
    wait_ready(url, process)
    return Server("dishpatch", process, url)


def start_baseline(binary: Path, backend: str) -> Server:
    url = f"http://127.0.0.1:{BASELINE_PORT}"
    process = subprocess.Popen(
        [str(binary), "--database-url", database_url(backend), "--listen", f"127.0.0.1:{BASELINE_PORT}"],
        stdout=subprocess.DEVNULL,
    )
    wait_ready(url, process)
    return Server("baseline", process, url)


# --- the cases -------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    body: str
    #: `__KEY__` in the body becomes a key unique to each request.
    unique_key: bool = False
    #: The baseline implements this case.
    baseline: bool = True
    headers: dict[str, str] | None = None


def query_body(file: str, operation: str, variables: dict) -> str:
    query = (QUERIES / file).read_text()
    return json.dumps({"query": query, "operationName": operation, "variables": variables}, separators=(",", ":"))


def post(url: str, body: str, headers: dict[str, str] | None = None) -> tuple[bytes, dict]:
    request = urllib.request.Request(
        url + "/graphql",
        data=body.encode(),
        headers={"content-type": "application/json", "accept": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read(), dict(response.headers)


def place_order_case(dishpatch: Path, server: Server, config: Path, backend: str) -> Case:
    token = run(
        str(dishpatch), "--config", str(config), "--database-url", database_url(backend),
        "--log-format", "json", "token", "--user", "customer@dishpatch.test", "--ttl", "6h",
        capture_output=True, text=True,
    ).stdout.strip()
    menu, _ = post(server.url, json.dumps({"query": '{ restaurant(slug: "trattoria-roma") { id menu { items { id available } } } }'}))
    restaurant = json.loads(menu)["data"]["restaurant"]
    items = [item["id"] for item in restaurant["menu"]["items"] if item["available"]][:2]
    body = query_body("q4_place_order.graphql", "PlaceOrder", {"input": {
        "restaurantId": restaurant["id"],
        "lines": [{"menuItemId": item, "quantity": 1} for item in items],
        "deliveryAddress": "Torstrasse 1, Berlin",
        "deliveryLocation": {"latitude": 52.53, "longitude": 13.40},
        "idempotencyKey": "__KEY__",
    }})
    return Case("Q4 placeOrder", body, unique_key=True, baseline=False, headers={"Authorization": f"Bearer {token}"})


def cases() -> list[Case]:
    return [
        Case("Q1 restaurants(first: 50)", query_body("q1_restaurants.graphql", "Restaurants", {})),
        Case("Q2 nested, first 10", query_body("q2_nested.graphql", "Nested", {"first": 10})),
        Case("Q2 nested, first 100", query_body("q2_nested.graphql", "Nested", {"first": 100})),
        Case("Q3 restaurant by slug", query_body("q3_restaurant.graphql", "Restaurant", {"slug": "trattoria-roma"})),
    ]


def check_identical(dishpatch: Server, baseline: Server) -> None:
    """The baseline must answer Q1-Q3 with dishpatch's very bytes before it is measured."""
    log("checking that the baseline's JSON is byte-identical to dishpatch's")
    run(sys.executable, str(BENCH / "compare.py"), dishpatch.url, baseline.url)


WRK_SCRIPT = r"""
local body = %s
local unique_key = %s
local extra_headers = %s
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
for name, value in pairs(extra_headers) do wrk.headers[name] = value end
wrk.body = body

local threads = {}
local next_id = 1
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

errors, statements, responses, counter = 0, 0, 0, 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))

function request()
  if not unique_key then return wrk.format() end
  counter = counter + 1
  local key = run .. "-" .. id .. "-" .. counter
  return wrk.format(nil, nil, nil, (body:gsub("__KEY__", key)))
end

function response(status, headers, response_body)
  responses = responses + 1
  if status ~= 200 or response_body:find('"errors"', 1, true)
     or response_body:find('"userErrors":[{', 1, true) then
    errors = errors + 1
  end
  local sql = headers["x-sql-statements"] or headers["X-SQL-Statements"]
  if sql then statements = statements + tonumber(sql) end
end

function done(summary, latency, requests)
  local e, s, r = 0, 0, 0
  for _, thread in ipairs(threads) do
    e = e + thread:get("errors")
    s = s + thread:get("statements")
    r = r + thread:get("responses")
  end
  local failed = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format('RESULT {"requests":%%d,"duration_us":%%d,"errors":%%d,"statements":%%d,"responses":%%d,"p50_us":%%d,"p99_us":%%d,"socket_errors":%%d}\n',
    summary.requests, summary.duration, e + failed, s, r, latency:percentile(50), latency:percentile(99), failed))
end
"""


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def wrk(server: Server, case: Case, connections: int, seconds: int, script_dir: Path) -> dict:
    script = script_dir / "case.lua"
    headers = "{" + ",".join(f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in (case.headers or {}).items()) + "}"
    script.write_text(WRK_SCRIPT % (lua_string(case.body), "true" if case.unique_key else "false", headers))
    threads = min(connections, 2)
    output = run(
        "wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
        "-s", str(script), server.url + "/graphql", capture_output=True, text=True,
    ).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


@dataclass
class Row:
    backend: str
    case: str
    connections: int
    server: str
    rps: float
    p50_ms: float
    p99_ms: float
    sql_per_request: float
    cpu_ms_per_request: float
    peak_rss_mb: float
    errors: int


def measure(server: Server, case: Case, connections: int, args, script_dir: Path, backend: str) -> Row:
    wrk(server, case, connections, args.warmup, script_dir)
    server.reset_peak_rss()
    cpu_before = server.cpu_seconds()
    result = wrk(server, case, connections, args.duration, script_dir)
    cpu = server.cpu_seconds() - cpu_before
    requests = max(result["requests"], 1)
    return Row(
        backend=backend,
        case=case.name,
        connections=connections,
        server=server.name,
        rps=result["requests"] / (result["duration_us"] / 1e6),
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        sql_per_request=result["statements"] / max(result["responses"], 1),
        cpu_ms_per_request=cpu * 1000 / requests,
        peak_rss_mb=server.peak_rss_mb(),
        errors=result["errors"],
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | case | conns | server | req/s | p50 ms | p99 ms | SQL/req | CPU ms/req | peak RSS MB | errors | vs baseline |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    baseline = {(r.backend, r.case, r.connections): r for r in rows if r.server == "baseline"}
    for r in rows:
        ratio = ""
        if r.server == "dishpatch" and (base := baseline.get((r.backend, r.case, r.connections))):
            ratio = f"{r.rps / base.rps:.2f}x"
        lines.append(
            f"| {r.backend} | {r.case} | {r.connections} | {r.server} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.sql_per_request:.1f} | {r.cpu_ms_per_request:.2f} | {r.peak_rss_mb:.0f} | "
            f"{r.errors} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--connections", default="1,16,64")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up before each run")
    parser.add_argument("--scale", type=int, default=100)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--cases", default="", help="only cases whose name contains this")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()

    if shutil.which("wrk") is None:
        log("wrk is missing; installing it (Debian package wrk)")
        run("apt-get", "install", "-y", "-qq", "wrk")
    if args.no_build:
        dishpatch, baseline_binary = TARGET / "release" / "dishpatch", TARGET / "release" / "dishpatch-baseline"
    else:
        dishpatch, baseline_binary = build()
    config = BENCH / "dishpatch-bench.toml"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as script_dir:
        for backend in args.backends.split(","):
            seed(dishpatch, backend, args.scale, args.reseed)
            ours = start_dishpatch(dishpatch, backend, config)
            theirs = start_baseline(baseline_binary, backend)
            try:
                all_cases = cases()
                check_identical(ours, theirs)
                all_cases.append(place_order_case(dishpatch, ours, config, backend))
                for case in all_cases:
                    if args.cases and args.cases not in case.name:
                        continue
                    for connections in map(int, args.connections.split(",")):
                        for server in [ours, theirs] if case.baseline else [ours]:
                            row = measure(server, case, connections, args, Path(script_dir), backend)
                            log(f"  {backend} {case.name} c={connections} {server.name}: "
                                f"{row.rps:,.0f} req/s, p99 {row.p99_ms:.1f} ms, {row.errors} errors")
                            rows.append(row)
            finally:
                ours.stop()
                theirs.stop()
    machine = f"{os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * PAGE / 2**30:.0f} GiB"
    print(f"dishpatch benchmark, {time.strftime('%Y-%m-%d')}, {machine}, scale {args.scale}, "
          f"{args.duration} s per run after {args.warmup} s of warm-up\n")
    print(table(rows))


if __name__ == "__main__":
    main()
