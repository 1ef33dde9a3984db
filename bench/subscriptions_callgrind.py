#!/usr/bin/env python3
"""What one live update costs the server, in instructions: dishpatch under callgrind, N subscribers.

    python3 bench/subscriptions_callgrind.py                 # 1,000 subscribers, 10 events
    python3 bench/subscriptions_callgrind.py --subscribers 500 --events 20

Wall-clock numbers on a shared two-core machine move by half from one hour to the next
(bench/RESULTS.md); instruction counts do not, so this is how a change to the fan-out path is
judged. It uses bench/subscriptions.py's pieces: a fresh SQLite database with the demo data,
one release server (run under `valgrind --tool=callgrind`), the demo owner's subscribers on
`restaurantOrders` (the Rust client, dishpatch-subscribers), orders placed by the demo
customer. Three windows are counted with `callgrind_control` (zeroed before, dumped after):

1. E orders placed with nobody subscribed: what placing an order costs by itself;
2. E orders placed with N subscribers, each waited for until it reached every one;
3. an idle window as long as (2): what the open sockets cost anyway (pings).

Instructions per delivery = (2 - 3 - 1) / (E * N): broadcast, each subscription's filter and
execution, serialisation, the socket's loop and the write, in user space (the kernel's share
is not counted). The dumps stay in bench/.data/callgrind/ for `callgrind_annotate`.

Needs: valgrind, a release build of dishpatch and dishpatch-subscribers (as
bench/subscriptions.py builds them; `--no-build` uses them as they are).
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import subscriptions as S  # noqa: E402

OUT = S.DATA / "callgrind"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=10)
    parser.add_argument("--no-build", action="store_true", help="use the release builds as they are")
    parser.add_argument("--binary", type=Path, help="this dishpatch binary (implies --no-build)")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed (apt-get install valgrind)")
    args.no_build = args.no_build or args.binary is not None
    binary = args.binary or (S.TARGET / "release" / "dishpatch" if args.no_build else S.build())
    client = S.TARGET / "release" / "dishpatch-subscribers" if args.no_build else S.build_client()
    for path in (binary, client):
        if not path.is_file():
            raise SystemExit(f"missing {path}; run without --no-build")

    url = S.prepare_database(binary, "sqlite")
    tokens = {"owner": S.token(binary, url, S.OWNER), "customer": S.token(binary, url, S.CUSTOMER)}
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("callgrind.out*"):
        old.unlink()
    # A wrapper, so that start_replica runs the server under callgrind.
    wrapper = OUT / "dishpatch-under-callgrind"
    wrapper.write_text(
        "#!/bin/sh\nexec valgrind --tool=callgrind "
        f"--callgrind-out-file={OUT}/callgrind.out.%p {binary} \"$@\"\n")
    wrapper.chmod(0o755)
    replica = S.start_replica(wrapper, url, S.BASE_PORT, OUT / "server.log")
    pid = str(replica.server.process.pid)
    subscribers = None

    def window(what: str) -> int:
        """Dumps the counts since the last zeroing; their total."""
        subprocess.run(["callgrind_control", "--dump=" + what, pid], check=True, capture_output=True)
        dumps = sorted(glob.glob(f"{OUT}/callgrind.out.{pid}.*"), key=lambda f: int(f.rsplit(".", 1)[1]))
        text = Path(dumps[-1]).read_text(errors="replace")
        return int(re.search(r"^summary: (\d+)", text, re.M).group(1))

    def zero() -> None:
        subprocess.run(["callgrind_control", "--zero", pid], check=True, capture_output=True)

    try:
        restaurant, items = S.menu(replica)
        for _ in range(3):
            S.place_order(replica, tokens["customer"], restaurant, items)
        zero()
        for _ in range(args.events):
            S.place_order(replica, tokens["customer"], restaurant, items)
        alone = window("orders alone")

        subscribers = S.Subscribers([str(client)], [replica.ws_url], args.subscribers, 50, restaurant,
                                    tokens["owner"], 3600)
        ready = subscribers.wait("ready", 60 + args.subscribers * 0.5)
        if not ready or ready["open"] != args.subscribers:
            raise SystemExit(f"the subscribers did not all subscribe: {ready}")
        for _ in range(5):
            warm = S.place_order(replica, tokens["customer"], restaurant, items)
            if subscribers.wait_complete([warm.key], 120):
                break
        else:
            raise SystemExit("no warm-up event reached every subscriber")
        zero()
        started = time.monotonic()
        for _ in range(args.events):
            event = S.place_order(replica, tokens["customer"], restaurant, items)
            if not subscribers.wait_complete([event.key], 300):
                raise SystemExit(f"event {event.key} did not reach every subscriber")
        with_subscribers = window("orders with subscribers")
        elapsed = time.monotonic() - started
        zero()
        time.sleep(elapsed)
        idle = window("idle")
    finally:
        if subscribers:
            subscribers.close()
        replica.server.stop()

    deliveries = args.events * args.subscribers
    per_delivery = (with_subscribers - idle - alone) / deliveries
    print(f"dishpatch under callgrind, SQLite, {args.subscribers:,} subscribers, {args.events} events "
          f"({time.strftime('%Y-%m-%d')}, binary {binary})")
    print(f"  orders alone:            {alone / args.events:>14,.0f} instructions per order")
    print(f"  orders with subscribers: {with_subscribers / args.events:>14,.0f} instructions per order")
    print(f"  idle, as long:           {idle / args.events:>14,.0f} instructions per order's share")
    print(f"  per delivery:            {per_delivery:>14,.0f} instructions (user space)")
    print(f"  dumps: {OUT}/callgrind.out.{pid}.*")


if __name__ == "__main__":
    main()
