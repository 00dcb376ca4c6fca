#!/usr/bin/env python
"""A class on /mnist (issue 35), before and after, side by side: one /mnist page alone, then N pages at once, each a
websocket client that reads and acknowledges every frame as the page does (nnref.bench.mnist_class), on a lab of
its own per run — one lab per checkout of nnref named, taking turns (A, B, A, B …) so that a machine whose load
drifts treats both alike.

    NNREF_DATA_ROOT=../shared/data python scripts/mnist_class.py [--code before=/path/to/old/checkout after=.]
        [--pages 30] [--seconds 20] [--repeats 3] [--setup '{"model": "mlp", "hidden": [100]}']
        [--out docs/results/mnist-class.log]

Prints each run's table, then per checkout the medians over the repeats of the figures the issue sets targets for:
updates per second of the median and the slowest page, seconds from Play to 90% validation accuracy (median page,
slowest page), the memory each page beyond the first costs the server, and the class's frames and epochs per second
of the server's CPU (less sensitive than the rest to other work on the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from pathlib import Path

from nnref.bench.mnist_class import format_mnist_class, measure_mnist_class
from nnref.bench.sides import SideLog, start_checkout_lab

KEYS = (
    "fps_median",
    "fps_min",
    "epochs_per_s_median",
    "to_90_s_median",
    "to_90_s_max",
    "mib_per_extra_page",
    "pause_to_test_s_max",
    "server_cpu",
    "server_rss_mib",
)


def run(code: Path, args) -> list[dict]:
    process, url = start_checkout_lab(code, max_sessions=2 * args.pages + 5)
    try:
        return measure_mnist_class(url, pages=args.pages, seconds=args.seconds, setup=args.setup)
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", nargs="+", default=["this=."], help="NAME=PATH of each checkout to measure")
    parser.add_argument("--pages", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--setup", type=json.loads, default=None, help="every page's state, as JSON (default: the page's)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    codes = dict(item.split("=", 1) for item in args.code)
    log = SideLog()
    say = log.say

    runs: dict[str, list] = {name: [] for name in codes}
    for repeat in range(args.repeats):
        for name, path in codes.items():
            rows = run(Path(path), args)
            runs[name].append(rows)
            say(f"\n{name}, repeat {repeat + 1} (load {os.getloadavg()[0]:.2f})", format_mnist_class(rows))
            say(
                *(json.dumps({k: v for k, v in r.items() if k != "errors"} | {"errors": r["errors"][:2]}) for r in rows)
            )
    say(f"\nmedians over {args.repeats} repeats, the class of {args.pages} (load now {os.getloadavg()[0]:.2f})")
    for name in codes:
        say(f"{name}:")
        for rows in runs[name]:  # the class's work per second of the server's CPU: less sensitive to the load
            r = rows[-1]
            cpu = r["server_cpu"] or float("nan")
            r["frames_per_cpu_s"] = r["fps_median"] * r["pages"] / cpu
            r["epochs_per_cpu_s"] = r["epochs_per_s_median"] * r["pages"] / cpu
        for key in (*KEYS, "frames_per_cpu_s", "epochs_per_cpu_s"):
            values = [rows[-1][key] for rows in runs[name]]
            known = [v for v in values if v is not None]
            median = round(statistics.median(known), 2) if known and len(known) == len(values) else None
            say(f"  {key}: {median}  (each: {[v if v is None else round(v, 2) for v in values]})")
    log.write(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
