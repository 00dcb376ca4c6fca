#!/usr/bin/env python
"""Stress nnref once, by hand (not in CI), and print the figures the README quotes.

    python scripts/stress.py soak [--interruptions 200] [--data-root ../shared/data]
    python scripts/stress.py killed-rank [--times 20]
    python scripts/stress.py lab [--minutes 10]

soak         short MNIST runs (1,000 training images, 3 epochs) interrupted at random moments — SIGTERM, SIGINT
             (Ctrl-C) or SIGKILL, sent from outside after a random delay, as a scheduler or a person would — each
             resumed with ``--resume auto`` until it finishes; every finished run's weights, momentum and logged
             ``loss/train_step`` must equal the uninterrupted run's.  Exit codes are tallied.
killed-rank  the test that SIGKILLs one rank of a ``torchrun`` job (torchrun restarts the group, which resumes),
             run N times in a row: how many pass, how long each took.
lab          pages of the lab's playground open, play and close in headless Chromium for N minutes, one to four
             at a time; the server's resident memory and its live sessions, sampled each minute, must stay flat.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = [
    "--epochs",
    "3",
    "--limit-train",
    "1000",
    "--val-size",
    "100",
    "--batch-size",
    "20",
    "--hidden",
    "64",
    "--momentum",
    "0.9",
    "--lr",
    "0.05",
    "--checkpoint-every",
    "10",
    "--log-every",
    "5",
    "--quiet",
    "--no-download",
]
SIGNALS = {"SIGTERM": signal.SIGTERM, "SIGINT": signal.SIGINT, "SIGKILL": signal.SIGKILL}


def _train(data_root: str, logdir: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [
        "train",
        "mlp",
        *RUN,
        "--data-root",
        data_root,
        "--logdir",
        str(logdir),
        "--run-name",
        name,
        "--resume",
        "auto",
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "nnref", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def _final(run: Path) -> tuple[dict, list]:
    import torch
    from tensorboard.backend.event_processing.plugin_event_accumulator import EventAccumulator

    from nnref.run.checkpoint import load_checkpoint

    state = load_checkpoint(run / "checkpoint.pt")
    ea = EventAccumulator(str(run), size_guidance={"tensors": 0})
    ea.Reload()
    losses = [(e.step, e.tensor_proto.float_val[0]) for e in ea.Tensors("loss/train_step")]
    momentum = [v["momentum_buffer"] for v in state["optimizer"]["state"].values()]
    return {
        "model": state["model"],
        "momentum": momentum,
        "step": state["global_step"],
        "finished": state.get("finished", False),
        "equal": torch.equal,
    }, losses


def _same(a, b) -> bool:
    (sa, la), (sb, lb) = a, b
    eq = sa["equal"]
    return (
        sa["finished"]
        and sb["finished"]
        and sa["step"] == sb["step"]
        and la == lb
        and all(eq(sa["model"][k], sb["model"][k]) for k in sb["model"])
        and all(eq(x, y) for x, y in zip(sa["momentum"], sb["momentum"], strict=True))
    )


def soak(interruptions: int, data_root: str, seed: int) -> int:
    rng = random.Random(seed)
    tally, codes, runs, wrong = collections.Counter(), collections.Counter(), 0, []
    with tempfile.TemporaryDirectory() as tmp:
        logdir = Path(tmp)
        start = time.perf_counter()
        job = _train(data_root, logdir, "reference")
        assert job.wait() == 0, job.stderr.read()
        duration = time.perf_counter() - start
        reference = _final(logdir / "reference")
        print(f"reference run: {reference[0]['step']} steps in {duration:.1f} s (start-up included)", flush=True)
        name, landed = f"run-{runs}", 0
        while landed < interruptions:
            job = _train(data_root, logdir, name)
            delay, kind = rng.uniform(0.2, duration), rng.choice(sorted(SIGNALS))
            try:
                job.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                job.send_signal(SIGNALS[kind])
                job.wait()
                landed += job.returncode != 0
                tally[kind] += job.returncode != 0
            codes[job.returncode] += 1
            if job.returncode == 0:  # finished: compare it, then start another run
                runs += 1
                if not _same(_final(logdir / name), reference):
                    wrong.append(name)
                name = f"run-{runs}"
            elif job.returncode not in (75, -9):
                print(f"{name}: exit {job.returncode}: {job.stderr.read()[-2000:]}", flush=True)
                wrong.append(name)
            if landed and landed % 20 == 0 and job.returncode != 0:
                print(f"... {landed} interruptions", flush=True)
        while True:  # the last run, to its end
            job = _train(data_root, logdir, name)
            codes[job.wait()] += 1
            if job.returncode == 0:
                runs += 1
                wrong += [] if _same(_final(logdir / name), reference) else [name]
                break
    print(
        f"\n{landed} interruptions ({', '.join(f'{k} {v}' for k, v in sorted(tally.items()))}) over {runs} runs, "
        f"each resumed with --resume auto until it finished"
    )
    print("exit codes: " + ", ".join(f"{_code(c)} × {n}" for c, n in sorted(codes.items())))
    print(
        f"finished runs equal to the uninterrupted run (weights, momentum, loss/train_step): {runs - len(wrong)} of "
        f"{runs}" + (f"; differ: {wrong}" if wrong else "")
    )
    return 1 if wrong else 0


def _code(code: int) -> str:
    return {0: "0 (finished)", 75: "75 (interrupted, resumable)", -9: "killed by SIGKILL"}.get(code, str(code))


def killed_rank(times: int) -> int:
    node = "tests/test_distributed.py::test_a_killed_rank_is_restarted_and_the_run_finishes_bit_identical"
    passed, took = 0, []
    for i in range(times):
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", node],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        took.append(time.perf_counter() - start)
        passed += done.returncode == 0
        print(f"{i + 1:2d}: {'pass' if done.returncode == 0 else 'FAIL'} in {took[-1]:.0f} s", flush=True)
        if done.returncode:
            print(done.stdout[-3000:], flush=True)
    print(
        f"\nthe killed-rank torchrun test: {passed} of {times} passed in a row; {min(took):.0f}–{max(took):.0f} s each"
    )
    return 0 if passed == times else 1


def lab(minutes: float, seed: int) -> int:
    from playwright.sync_api import sync_playwright

    from nnref.bench import chromium
    from nnref.lab.server import LabServer

    rng = random.Random(seed)
    hashes = [
        "#preset=deeper-net-on-spirals",
        "#preset=one-layer-on-xor",
        "#dataset=blobs&classes=4&model=compare",
        "#dataset=spirals&classes=3&hidden=8,8,8,8,8,8",
    ]
    samples, opened = [], 0
    with LabServer(max_sessions=8) as server, sync_playwright() as playwright:
        browser = chromium.open_browser(playwright)
        end, next_sample = time.monotonic() + minutes * 60, time.monotonic()
        while time.monotonic() < end:
            pages = []
            for _ in range(rng.randint(1, 4)):
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(server.url + rng.choice(hashes))
                page.wait_for_function("() => window.nnrefLab && window.nnrefLab.frames > 0", timeout=60_000)
                page.get_by_role("button", name="Play").click()
                pages.append(page)
                opened += 1
            pages[0].wait_for_timeout(rng.uniform(1000, 5000))
            for page in pages:
                page.close()
            if time.monotonic() >= next_sample:
                time.sleep(1.5)  # a closed page ends its session within a second
                samples.append(
                    (len(samples), _rss_mib(), server.app.state.sessions.open, opened, threading.active_count())
                )
                print(
                    f"minute {samples[-1][0]:2d}: resident {samples[-1][1]:.0f} MiB, live sessions "
                    f"{samples[-1][2]}, threads {samples[-1][4]}, pages opened so far {opened}",
                    flush=True,
                )
                next_sample += 60
        browser.close()
    growth = samples[-1][1] - samples[1][1] if len(samples) > 2 else 0.0
    print(
        f"\n{opened} pages opened and closed over {minutes:g} minutes; resident memory {samples[1][1]:.0f} MiB "
        f"after the first minute, {samples[-1][1]:.0f} MiB at the end ({growth:+.0f} MiB); live sessions at each "
        f"sample: {[s[2] for s in samples]}"
    )
    return 0 if all(s[2] == 0 for s in samples) and growth < 50 else 1


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("soak")
    p.add_argument("--interruptions", type=int, default=200)
    p.add_argument("--data-root", default=os.environ.get("NNREF_DATA_ROOT", "data"))
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("killed-rank")
    p.add_argument("--times", type=int, default=20)
    p = sub.add_parser("lab")
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.what == "soak":
        return soak(args.interruptions, args.data_root, args.seed)
    if args.what == "killed-rank":
        return killed_rank(args.times)
    return lab(args.minutes, args.seed)


if __name__ == "__main__":
    sys.exit(main())
