"""Ctrl-C at random moments of ``make-dataset`` runs with 0, 1 and 2 workers: each must exit
within 3 s, record ``"interrupted"`` (or ``"complete"``) in its manifest and release its lock.

    python benchmarks/bench_interrupts.py [--quick] [--trials N] [--seed S]

Every trial starts a real ``python -m hnet_keras make-dataset`` in its own process group,
waits a random time (from start-up to past the end of the run), then sends SIGINT to the
group (a terminal's Ctrl-C) or to the main process alone, and times the exit. A process
still running after the limit gets SIGUSR1, which dumps its threads' stacks (kept in the
report), then SIGKILL. Prints one line per failed trial, then one JSON object on the last
line: trials, failures, the slowest exit, and counts per worker setting.
"""

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LIMIT_S = 3.0
LOCK = ".hnet_keras.lock"
# The CLI with a stack dump on SIGUSR1, so a hung run shows where it hangs.
_WRAPPER = ("import faulthandler, signal, sys; faulthandler.register(signal.SIGUSR1, all_threads=True); "
            "from hnet_keras.cli import main; main(sys.argv[1:])")


def photo_folder(folder, copies):
    """``copies`` links to each embedded photo in ``folder`` (a run of a second or two per 4 copies)."""
    from hnet_keras.data.images import embedded_photo_paths

    folder.mkdir(parents=True, exist_ok=True)
    for copy in range(copies):
        for path in embedded_photo_paths():
            link = folder / f"{copy:02d}_{path.name}"
            if not link.exists():
                os.symlink(path, link)
    return folder


def environment():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.pop("HNET_KERAS_TRACEBACK", None)
    return env


def _default_sigint():
    """In the child: SIGINT back to its default, as in a terminal (a test or benchmark run in the
    background, ``nohup ... &``, ignores it, and a child would inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_trial(images, out, workers, delay, to_group=True, limit=LIMIT_S):
    """One run of ``make-dataset`` into ``out``, SIGINT after ``delay`` s; returns what happened.

    Returns:
        A dict: ``exit_s`` (seconds from the signal to the exit; ``None`` when it finished
        first), ``returncode``, ``status`` (the manifest's, ``None`` without one),
        ``lock_left``, ``partial_left``, ``ok`` and, when not ok, ``stderr`` (its tail,
        with the stack dump of a hung run).
    """
    command = [sys.executable, "-c", _WRAPPER, "make-dataset", "--images", str(images), "--out", str(out),
               "--pairs-per-image", "8", "--archive-size", "40", "--workers", str(workers), "--patch", "64",
               "--image-size", "160", "120", "--rho", "16"]
    # stderr to a file: a pipe nobody reads while we wait could fill and stall the run.
    log = tempfile.TemporaryFile("w+", encoding="utf-8")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True,
                               start_new_session=True, env=environment(), cwd=ROOT, preexec_fn=_default_sigint)
    exit_s = None
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        (os.killpg if to_group else os.kill)(process.pid, signal.SIGINT)
        sent = time.monotonic()
        try:
            process.wait(timeout=limit)
            exit_s = time.monotonic() - sent
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGUSR1)  # the stacks, then the end
            time.sleep(1.0)
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            exit_s = float("inf")
    log.seek(0)
    stderr = log.read()
    log.close()
    manifest = out / "manifest.json"
    status = json.loads(manifest.read_text())["status"] if manifest.is_file() else None
    result = {
        "workers": workers, "delay": round(delay, 3), "to_group": to_group, "returncode": process.returncode,
        "exit_s": None if exit_s is None else round(exit_s, 3), "status": status,
        "lock_left": (out / LOCK).exists(),
        "partial_left": sorted(p.name for p in out.glob(".*") if p.name != LOCK) if out.is_dir() else [],
    }
    # A traceback counts once the command runs (a manifest exists); before, a Ctrl-C lands in
    # Python's own start-up, which prints one.
    result["traceback"] = "Traceback" in stderr
    if exit_s is None:
        result["ok"] = process.returncode == 0 and status == "complete"
    else:
        result["ok"] = exit_s < limit and status in (None, "interrupted", "complete") and not (
            status is not None and result["traceback"])
    result["ok"] = result["ok"] and not result["lock_left"] and not result["partial_left"]
    if not result["ok"]:
        result["stderr"] = stderr[-4000:]
    return result


def run_trials(trials, seed=0, copies=4, max_delay=None, folder=None):
    """``trials`` interrupt trials, cycling over 0, 1 and 2 workers and both signal targets.

    Delays are uniform between 0 (start-up) and ``max_delay`` (default: 1.3 times a
    measured uninterrupted run with 2 workers, so some runs finish first).
    """
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        scratch = Path(scratch)
        images = photo_folder(scratch / "photos", copies)
        if max_delay is None:
            started = time.monotonic()
            interrupt_trial(images, scratch / "timing", 2, 600.0)
            max_delay = 1.3 * (time.monotonic() - started)
        results = []
        for index in range(trials):
            out = scratch / f"out{index}"
            results.append(interrupt_trial(images, out, index % 3, rng.uniform(0.0, max_delay),
                                           to_group=index % 4 != 3))
        return results, max_delay


def summary(results, max_delay):
    interrupted = [r["exit_s"] for r in results if r["exit_s"] is not None]
    return {
        "trials": len(results),
        "interrupted": len(interrupted),
        "exited_130": sum(r["returncode"] == 130 for r in results),
        "failures": sum(not r["ok"] for r in results),
        "max_exit_s": max(interrupted) if interrupted else None,
        "max_delay_s": round(max_delay, 2),
        "by_workers": {str(w): {"trials": sum(r["workers"] == w for r in results),
                                "failures": sum(r["workers"] == w and not r["ok"] for r in results)}
                       for w in (0, 1, 2)},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="12 trials instead of 200")
    parser.add_argument("--trials", type=int, default=None, help="number of trials (default 200, --quick 12)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the signal times")
    args = parser.parse_args()
    trials = args.trials or (12 if args.quick else 200)
    results, max_delay = run_trials(trials, args.seed)
    for result in results:
        if not result["ok"]:
            print(json.dumps(result))
    print(json.dumps(summary(results, max_delay)))


if __name__ == "__main__":
    main()
