"""Kill training with SIGKILL at many moments, checkpoint writes included; every resume must end identical."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from bert_tasks.training import checkpoint_dirs

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


def test_ctrl_c_right_after_the_staging_folder_is_made_leaves_nothing(tmp_path):
    """The window CI hit once: the staging folder made, the write that cleans up after itself not yet begun."""
    from bert_tasks.training.checkpoints import save_checkpoint

    class Interrupted:
        is_main_process = True

        def wait_for_everyone(self):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(Interrupted(), tmp_path, {"global_step": 6}, keep=None, run_config=None)
    assert not list((tmp_path / "checkpoints").glob(".step-*")), list((tmp_path / "checkpoints").iterdir())
