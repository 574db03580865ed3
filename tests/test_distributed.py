"""Real multi-process runs on this CPU (gloo over loopback): equivalence, multi-node, resume, failure."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

WORKER = str(Path(__file__).resolve().parent / "distributed_worker.py")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args: str, nproc: int = 2, nnodes: int = 1, node_rank: int = 0, port: int | None = None) -> list[str]:
    """``--tee 3``: every rank's own output, prefixed with its rank, reaches torchrun's, so a rank that dies (a
    distilbert run's rank 1 once died of SIGABRT in CI) leaves its last words in the failure message."""
    return [sys.executable, "-m", "torch.distributed.run", "--tee=3", f"--nproc-per-node={nproc}", f"--nnodes={nnodes}",
            f"--node-rank={node_rank}", "--master-addr=127.0.0.1", f"--master-port={port or free_port()}", WORKER, *args]


def run(cmd: list[str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)


def outcome(folder: Path):
    return load_file(folder / "final.safetensors"), json.loads((folder / "final.json").read_text())


def max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    """The reference: one process, global batch 16 as 2 accumulated micro-batches of 8."""
    out = tmp_path_factory.mktemp("single")
    done = run([sys.executable, WORKER, "--out", str(out), "--accum", "2"])
    assert done.returncode == 0, done.stderr[-2000:]
    return outcome(out)


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path, single_process):
    done = run(torchrun("--out", str(tmp_path), "--accum", "1"))
    assert done.returncode == 0, done.stderr[-2000:]
    weights, info = outcome(tmp_path)
    ref_weights, ref = single_process
    assert info["processes"] == 2 and ref["processes"] == 1
    assert max_diff(weights, ref_weights) <= 1e-5
    assert abs(info["train_loss"] - ref["train_loss"]) <= 1e-5
    # 31 eval examples over 2 processes: none dropped, none duplicated, identical metrics
    assert info["eval_count"] == ref["eval_count"] == 31
    assert info["predictions"] == ref["predictions"] and info["accuracy"] == ref["accuracy"]


def test_attention_pooling_trains_alike_in_two_processes(tmp_path):
    """The pooling head's own parameters are synchronised like the rest: 2 processes = 1 with the same global batch."""
    pooled = ("--pooling", "attention", "--attention-score", "general")
    one = run([sys.executable, WORKER, "--out", str(tmp_path / "one"), "--accum", "2", *pooled])
    two = run(torchrun("--out", str(tmp_path / "two"), "--accum", "1", *pooled))
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-2000:]
    (weights, info), (ref_weights, ref) = outcome(tmp_path / "two"), outcome(tmp_path / "one")
    assert any(k.startswith("pooling.score.w") for k in weights) and info["processes"] == 2
    assert max_diff(weights, ref_weights) <= 1e-5 and info["predictions"] == ref["predictions"]


@pytest.mark.parametrize("family", ["roberta", "electra", "distilbert"])
def test_every_family_trains_alike_in_two_processes(tmp_path, family):
    """The family options (positions after padding, projected embeddings, no token types, other classifiers)
    train in 2 processes as in 1 with the same global batch."""
    one = run([sys.executable, WORKER, "--out", str(tmp_path / "one"), "--accum", "2", "--family", family])
    two = run(torchrun("--out", str(tmp_path / "two"), "--accum", "1", "--family", family))
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stdout[-3000:] + two.stderr)[-6000:]
    (weights, info), (ref_weights, ref) = outcome(tmp_path / "two"), outcome(tmp_path / "one")
    assert info["processes"] == 2 and max_diff(weights, ref_weights) <= 1e-5 and info["predictions"] == ref["predictions"]


@pytest.mark.slow
def test_two_nodes_on_loopback_finish_and_agree(tmp_path, single_process):
    port = free_port()
    launchers = [subprocess.Popen(torchrun("--out", str(tmp_path / f"node{rank}"), nproc=1, nnodes=2, node_rank=rank, port=port),
                                  env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
    for p in launchers:
        assert p.wait(timeout=240) == 0, p.stderr.read()[-2000:]
    weights, info = outcome(tmp_path / "node0")
    assert info["processes"] == 2
    assert max_diff(weights, single_process[0]) <= 1e-5
    assert not (tmp_path / "node1" / "final.json").exists()  # only the global main process writes


@pytest.mark.slow
def test_sigkill_between_checkpoints_then_resume_reaches_the_same_weights(tmp_path, single_process):
    out = tmp_path / "run"
    args = [sys.executable, WORKER, "--out", str(out), "--accum", "2", "--save-steps", "2", "--sleep", "0.3"]
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while not (out / "checkpoints" / "step-2" / "trainer_state.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "final.json").exists()
    done = run(args[:-2] + ["--resume-from", "latest"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resumed from" in done.stdout + done.stderr
    weights, _ = outcome(out)
    assert max_diff(weights, single_process[0]) == 0.0  # bit-identical on CPU


@pytest.mark.slow
def test_a_dead_worker_ends_the_run_quickly_with_an_error(tmp_path):
    start = time.monotonic()
    done = run(torchrun("--out", str(tmp_path), "--fail-rank", "1", "--fail-step", "3"), timeout=120)
    elapsed = time.monotonic() - start
    assert done.returncode != 0
    assert elapsed < 60, f"took {elapsed:.0f}s"
    assert "exitcode" in done.stderr.lower() or "failed" in done.stderr.lower()


@pytest.mark.slow
def test_a_training_command_runs_unchanged_under_a_launcher(tmp_path):
    """`bert-tasks finetune glue` under torchrun with 2 processes: one run folder, one summary, no lost examples."""
    data = tmp_path / "SST-2"
    data.mkdir()
    rows = "".join(f"a fine film number {i}\t1\na dull film number {i}\t0\n" for i in range(20))
    (data / "train.tsv").write_text("sentence\tlabel\n" + rows)
    (data / "dev.tsv").write_text("sentence\tlabel\n" + "".join(rows.splitlines(True)[:23]))  # odd count
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--master-addr=127.0.0.1",
           f"--master-port={free_port()}", "-m", "bert_tasks.cli", "finetune", "glue", "--task", "sst2",
           "--data-dir", str(data), "--model", "minilm", "--output-dir", str(tmp_path / "out"), "--max-steps", "2",
           "--batch-size", "4"]
    done = run(cmd)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert results["eval_samples"] == 23
    assert done.stdout.count("sst2 (") == 1
    predictions = (tmp_path / "out" / "eval_predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["idx"] for line in predictions) == list(range(23))


@pytest.mark.parametrize("config", ["ddp", "fsdp"])
def test_a_nan_on_one_process_is_skipped_by_all_without_a_hang(tmp_path, config):
    """Rank 1's loss turns NaN at its 2nd micro-batch: every process skips that backward and step alike (a
    backward holds collectives all processes must enter), and the run finishes with 1 step skipped."""
    poison = ("--out", str(tmp_path), "--poison-rank", "1", "--poison-step", "2", "--precision", "no")
    if config == "ddp":
        cmd = torchrun(*poison)
    else:
        from test_sharding import accelerate_launch

        cmd = accelerate_launch(WORKER, *poison)
    done = run(cmd, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    _, info = outcome(tmp_path)
    assert info["skipped"] == 1 and info["steps"] == 6


def test_best_state_and_early_stopping_agree_in_two_processes(tmp_path):
    """Every process decides from the gathered dev metrics, so 2 processes keep the same step, stop at the same step
    (none alone) and end on the same weights as 1 process with the same global batch."""
    select = ("--steps", "30", "--select", "0.002")
    one = run([sys.executable, WORKER, "--out", str(tmp_path / "one"), "--accum", "2", *select])
    two = run(torchrun("--out", str(tmp_path / "two"), "--accum", "1", *select))
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-2000:]
    (weights, info), (ref_weights, ref) = outcome(tmp_path / "two"), outcome(tmp_path / "one")
    assert info["processes"] == 2 and ref["stopped_early"] and info["stopped_early"]
    assert info["steps"] == ref["steps"] < 30 and info["best"]["step"] == ref["best"]["step"] < info["steps"]
    assert info["best"]["score"] == pytest.approx(ref["best"]["score"], abs=1e-5)
    assert max_diff(weights, ref_weights) <= 1e-5 and info["predictions"] == ref["predictions"]
