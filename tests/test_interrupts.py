"""Ctrl-C never hangs ``make-dataset``: SIGINT at several points of real runs with 0, 1 and 2
workers, each exiting within 3 s with its manifest at "interrupted" and its lock released
(the small version of ``benchmarks/bench_interrupts.py``)."""

import importlib.util
import signal
from pathlib import Path

import pytest

from hnet_keras.data import generate

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_interrupts", ROOT / "benchmarks" / "bench_interrupts.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return bench.photo_folder(tmp_path_factory.mktemp("photos"), copies=4)


@pytest.mark.parametrize("workers, delay, to_group", [
    (0, 0.15, True),   # during start-up (imports)
    (0, 1.6, True),    # workers starting or synthesizing
    (1, 1.4, False),   # synthesizing in the main process, signal to it alone
    (2, 2.2, True),    # synthesizing, archives being written
])
def test_sigint_at_several_points_exits_within_3_s(photos, tmp_path, workers, delay, to_group):
    result = bench.interrupt_trial(photos, tmp_path / "out", workers, delay, to_group)
    assert result["ok"], result
    if result["exit_s"] is not None:
        assert result["exit_s"] < 3
        assert result["status"] in (None, "interrupted", "complete")


def test_a_deferred_interrupt_is_raised_at_the_next_check_only():
    previous = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with generate._interrupts_deferred() as deferred:
            signal.raise_signal(signal.SIGINT)  # recorded, not raised here
            assert deferred.received
            deferred.check()
    assert signal.getsignal(signal.SIGINT) is previous
