"""Kill training with SIGKILL at many moments, checkpoint writes included; every resume must end identical."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from bert_tasks.training import checkpoint_dirs
from line_interrupts import interrupt_on_every_line

WORKER = str(Path(__file__).resolve().parent / "distributed_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
STEPS = 200  # long enough that no trial finishes before its kill, even on an idle machine


def command(out: Path, resume: bool) -> list[str]:
    cmd = [sys.executable, WORKER, "--out", str(out), "--steps", str(STEPS), "--save-steps", "1", "--sleep", "0.02"]
    return cmd + (["--resume-from", "latest"] if resume else [])


@pytest.mark.slow
def test_resume_after_random_sigkills_reaches_the_uninterrupted_weights(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(command(reference, False), env=ENV, check=True, capture_output=True, timeout=300)

    out, rng, kills, during_write = tmp_path / "killed", random.Random(1234), 0, 0
    for trial in range(12):
        proc = subprocess.Popen(command(out, trial > 0), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        if trial % 3 == 2:
            # aim at a checkpoint write: kill as soon as a temporary checkpoint folder appears
            while time.monotonic() < deadline and proc.poll() is None:
                if any(p.name.endswith(".tmp") for p in (out / "checkpoints").glob(".step-*")):
                    break
                time.sleep(0.002)
        else:
            # wait until this run is training (its log grew), then kill after a random delay
            log = out / "train_log.jsonl"
            start_size = log.stat().st_size if log.exists() else 0
            while time.monotonic() < deadline and proc.poll() is None and (not log.exists() or log.stat().st_size <= start_size):
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
            during_write += trial % 3 == 2
        proc.wait()
        if (out / "final.json").exists():
            break
        # every kill leaves a complete checkpoint to resume from (or none yet, which means step 0)
        for ckpt in checkpoint_dirs(out):
            assert {"trainer_state.json", "model.safetensors"} <= {p.name for p in ckpt.iterdir()}
    subprocess.run(command(out, True), env=ENV, check=True, capture_output=True, timeout=300)
    assert kills >= 10 and during_write >= 3

    expected, actual = load_file(reference / "final.safetensors"), load_file(out / "final.safetensors")
    assert expected.keys() == actual.keys()
    assert all((expected[k] == actual[k]).all() for k in expected)


def test_a_ctrl_c_on_any_line_of_a_checkpoint_save_leaves_whole_checkpoints_only(tmp_path):
    """Every line of save_checkpoint (and the standard library under it) interrupted in turn, as CI's timed
    Ctrl-C once landed between making the staging folder and the ``try`` that removes it."""
    from bert_tasks.training.checkpoints import save_checkpoint

    class OneProcess:
        is_main_process = True

        def wait_for_everyone(self):
            pass

        def save_state(self, folder, safe_serialization):
            (Path(folder) / "model.safetensors").write_bytes(b"weights")

    root = tmp_path / "checkpoints"

    def check(where):
        staging = [p.name for p in root.glob(".step-*")]
        assert not staging, (where, staging)
        complete = checkpoint_dirs(tmp_path)
        assert [p.name for p in complete][:1] == ["step-3"] or [p.name for p in complete] == ["step-6"], where
        for folder in complete:
            assert {p.name for p in folder.iterdir()} == {"model.safetensors", "run_config.json", "trainer_state.json"}
        shutil.rmtree(root / "step-6", ignore_errors=True)
        save_checkpoint(OneProcess(), tmp_path, {"global_step": 3}, keep=None, run_config={})  # step 3 as it was

    save_checkpoint(OneProcess(), tmp_path, {"global_step": 3}, keep=None, run_config={})
    tried = interrupt_on_every_line(
        lambda: save_checkpoint(OneProcess(), tmp_path, {"global_step": 6}, keep=1, run_config={}), check)
    assert tried > 100


def test_an_error_raised_over_a_ctrl_c_stops_a_sweep_rather_than_failing_one_run():
    from bert_tasks.errors import from_ctrl_c
    from bert_tasks.runner.outputs import open_ledger
    from bert_tasks.runner.template import run_failure

    def raised(inner):
        try:
            try:
                raise inner
            finally:
                raise OSError(9, "Bad file descriptor")
        except OSError as exc:
            return exc

    over_ctrl_c, over_error = raised(KeyboardInterrupt()), raised(ValueError("x"))
    assert from_ctrl_c(over_ctrl_c) and not from_ctrl_c(over_error) and from_ctrl_c(KeyboardInterrupt())
    with open_ledger() as ledger:
        ledger.trainings_started = 1  # the run had begun training: an ordinary error there fails that run only
        assert run_failure(over_error, trainings_before=0) == "OSError: [Errno 9] Bad file descriptor"
        assert run_failure(over_ctrl_c, trainings_before=0) is None  # re-raised: the whole sweep stops
