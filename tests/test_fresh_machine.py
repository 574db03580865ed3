"""What a new user meets first, through the real CLI: Ctrl-C, crashes, file permissions, progress in logs,
start-up cost, resumed logs, honest run folders, and task folders named anything."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bert_tasks.cli import main

HERE = Path(__file__).resolve().parent
WORKER = HERE / "interrupt_worker.py"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
WORDS = "good bad fine dull great awful film plot actors story music long short".split()


def sst2_files(folder: Path, n: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name, size in (("train.tsv", n), ("dev.tsv", max(8, n // 4))):
        rows = [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(size)]
        (folder / name).write_text("sentence\tlabel\n" + "".join(f"{r}\t{int('good' in r or 'great' in r)}\n" for r in rows))
    return folder


def glue_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "glue", "--task", "sst2", "--model", str(model), "--data-dir", str(data), "--output-dir", str(out),
            "--batch-size", "4", "--max-seq-length", "32", "--logging-steps", "1", *extra]


# --------------------------------------------------------------------------- Ctrl-C


def start(phase: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), phase, "--", *argv], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(condition, proc: subprocess.Popen, timeout: float = 120.0, poll: float = 0.002) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before the moment came: {proc.communicate()}"
        assert time.monotonic() < deadline, "the moment never came"
        time.sleep(poll)


def interrupt(proc: subprocess.Popen) -> tuple[int, str, float]:
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - sent


def stderr_line_seen(proc_err: list[str], proc: subprocess.Popen, text: str):
    """A condition that reads the run's stderr line by line until ``text`` appears."""
    def seen() -> bool:
        line = proc.stderr.readline()
        proc_err.append(line)
        return text in line

    return seen


@pytest.mark.parametrize("phase", ["data", "model"])
def test_ctrl_c_while_preparing_stops_at_once_and_leaves_nothing(phase, tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = start(phase, glue_args(tiny_model, sst2_files(tmp_path / "sst"), out, "--max-steps", "5"))
    seen: list[str] = []
    wait_for(stderr_line_seen(seen, proc, f"stalled in {phase}"), proc)
    code, err, took = interrupt(proc)
    assert code == 130 and took < 5, (code, took, err)
    assert err.strip().splitlines()[-1] == "interrupted" and "Traceback" not in err, err
    assert not out.exists()  # nothing was worth keeping: the same command can simply be run again


def test_ctrl_c_in_code_that_ignores_it_is_still_heard(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = start("stubborn", glue_args(tiny_model, sst2_files(tmp_path / "sst"), out, "--max-steps", "5"))
    seen: list[str] = []
    wait_for(stderr_line_seen(seen, proc, "stalled in stubborn"), proc)
    code, err, took = interrupt(proc)  # the worker shortened the watchdog's grace to 2 s
    assert code == 130 and took < 6, (code, took, err)
    assert "interrupted (the run did not stop within 2 s of Ctrl-C)" in err and "Traceback" not in err, err
    assert not out.exists()


def test_ctrl_c_during_training_before_any_checkpoint_cleans_up(tiny_model, tmp_path):
    out = tmp_path / "run"
    proc = start("none", glue_args(tiny_model, sst2_files(tmp_path / "sst", n=400), out, "--max-steps", "2000"))
    log = out / "train_log.jsonl"
    wait_for(lambda: log.exists() and log.stat().st_size > 0, proc)
    code, err, took = interrupt(proc)
    assert code == 130 and took < 5, (code, took, err)
    assert err.strip().splitlines()[-1] == "interrupted", err
    assert not out.exists()


def test_ctrl_c_during_a_checkpoint_write_keeps_the_last_one_and_says_how_to_resume(tiny_model, tmp_path):
    out, data = tmp_path / "run", sst2_files(tmp_path / "sst", n=400)
    argv = glue_args(tiny_model, data, out, "--max-steps", "2000", "--save-steps", "3")
    proc = start("none", argv)
    checkpoints = out / "checkpoints"
    wait_for(lambda: (checkpoints / "step-3" / "trainer_state.json").exists(), proc)
    wait_for(lambda: any(checkpoints.glob(".step-*.tmp")), proc, poll=0.0005)  # the next write has begun
    code, err, took = interrupt(proc)
    assert code == 130 and took < 5, (code, took, err)
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted; resume with: bert-tasks finetune glue ") and last.endswith("--resume-from latest")
    assert not list(checkpoints.glob(".step-*")), "a half-written checkpoint was left behind"
    kept = sorted(int(p.name[5:]) for p in checkpoints.glob("step-*"))
    assert kept and all((checkpoints / f"step-{k}" / "trainer_state.json").exists() for k in kept)

    # the printed command resumes; the log then holds every step exactly once
    resume = last.split("resume with: ", 1)[1].split()[1:]
    resume[resume.index("--max-steps") + 1] = str(kept[-1] + 2)
    resumed = subprocess.run([sys.executable, str(WORKER), "none", "--", *resume], env=ENV, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "weights initialised" not in resumed.stderr  # the head comes from the checkpoint: no news on resume
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()
             if "eval" not in json.loads(line)]
    assert steps == list(range(1, kept[-1] + 3))


# --------------------------------------------------------------------------- bugs, permissions, progress


def test_an_unexpected_exception_is_one_line_with_the_traceback_in_a_file(tiny_model, tmp_path, capsys, monkeypatch):
    from bert_tasks.tasks.glue.task import GlueTask

    def broken_loss(self, outputs, batch):
        raise RuntimeError("boom in the loss")

    monkeypatch.setattr(GlueTask, "loss", broken_loss)
    out = tmp_path / "run"
    code = main(glue_args(tiny_model, sst2_files(tmp_path / "sst"), out, "--max-steps", "2"))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "Traceback" not in "\n".join(err)
    line = err[-1]
    assert line.startswith("error: internal error (RuntimeError: boom in the loss); this is a bug in bert-tasks")
    log = Path(re.search(r"the traceback is in (\S+) ", line).group(1))
    assert "boom in the loss" in log.read_text() and "Traceback" in log.read_text()
    log.unlink()
    assert not out.exists()  # cleaned up exactly as for a bad input


def test_an_error_the_clean_up_raises_over_a_ctrl_c_is_the_ctrl_c(tiny_model, tmp_path, capfd, monkeypatch):
    """shutil.rmtree cut off by a Ctrl-C closes a descriptor twice and raises EBADF over it: still "interrupted"."""
    from bert_tasks.tasks.glue.task import GlueTask

    def interrupted_loss(self, outputs, batch):
        try:
            raise KeyboardInterrupt
        finally:
            raise OSError(errno.EBADF, "Bad file descriptor")

    monkeypatch.setattr(GlueTask, "loss", interrupted_loss)
    code = main(glue_args(tiny_model, sst2_files(tmp_path / "sst"), tmp_path / "run", "--max-steps", "2"))
    err = capfd.readouterr().err.strip().splitlines()  # the line is written to fd 2 directly
    assert code == 130 and err[-1] == "interrupted", err


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_run_outputs_get_the_users_normal_permissions(umask, tiny_model, tmp_path, capsys):
    old = os.umask(umask)
    try:
        out = tmp_path / "run"
        assert main(glue_args(tiny_model, sst2_files(tmp_path / "sst"), out, "--max-steps", "2")) == 0
        assert main(["recipes", "cp", "glue-sst2", str(tmp_path / "mine.yaml")]) == 0
    finally:
        os.umask(old)
    expected = 0o666 & ~umask
    files = [p for p in out.rglob("*") if p.is_file()] + [tmp_path / "mine.yaml"]
    assert {"model.safetensors", "config.json", "README.md", "recipe.yaml", "train_log.jsonl"} <= {p.name for p in files}
    wrong = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != expected}
    assert not wrong, wrong


def test_without_a_terminal_every_logged_step_prints_one_plain_line(tiny_model, tmp_path, capsys):
    assert main(glue_args(tiny_model, sst2_files(tmp_path / "sst"), tmp_path / "run", "--max-steps", "4")) == 0
    err = capsys.readouterr().err.splitlines()
    steps = [line for line in err if line.startswith("step ")]
    pattern = r"step (\d)/4  loss \d+\.\d{4}  lr \d\.\d\de[-+]\d\d  tokens/s \d+  eta \d+s"
    assert [re.fullmatch(pattern, line).group(1) for line in steps] == ["1", "2", "3", "4"], err
    assert any(line.startswith("threads: ") for line in err)


# --------------------------------------------------------------------------- honest run folders


def test_run_folder_says_what_was_measured_and_trained(tiny_model, tmp_path, caplog):
    import transformers

    out = tmp_path / "run"
    assert main(glue_args(tiny_model, sst2_files(tmp_path / "sst", n=64), out, "--max-steps", "5", "--epochs", "3",
                          "--max-eval-samples", "10")) == 0
    assert "expected when fine-tuning" in caplog.text  # a fresh head is announced as the normal thing it is
    config = json.loads((out / "config.json").read_text())
    assert config["transformers_version"] == transformers.__version__ and "_name_or_path" not in config
    assert config["bert_tasks_version"]
    card = (out / "README.md").read_text()
    assert "Measured on GLUE SST-2 validation, 10 examples (the first 10: max_eval_samples)." in card
    assert "Trained for 5 optimizer steps" in card and "| max_steps | 5 |" in card and "| epochs |" not in card
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if "eval" not in r]
    assert json.loads((out / "train_results.json").read_text())["train_loss"] == pytest.approx(np.mean(losses), rel=1e-12)


def test_stsb_predictions_reproduce_the_reported_correlations(tiny_model, tmp_path):
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(1)
    folder = tmp_path / "scores"
    folder.mkdir()
    head = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
    for name, n in (("train.tsv", 24), ("dev.tsv", 13)):
        rows = [f"{i}\tg\tf\t2012\t{i}\ts\ts\t{' '.join(rng.choice(WORDS, 4))}\t{' '.join(rng.choice(WORDS, 5))}\t"
                f"{rng.uniform(0, 5):.8f}\n" for i in range(n)]
        (folder / name).write_text(head + "".join(rows))
    out = tmp_path / "run"
    assert main(["finetune", "glue", "--task", "stsb", "--model", str(tiny_model), "--data-dir", str(folder),
                 "--output-dir", str(out), "--max-steps", "3", "--batch-size", "4", "--max-seq-length", "32"]) == 0
    rows = [json.loads(line) for line in (out / "eval_predictions.jsonl").read_text().splitlines()]
    gold_in_file = [float(line.split("\t")[-1]) for line in (folder / "dev.tsv").read_text().splitlines()[1:]]
    assert [r["label"] for r in rows] == gold_in_file  # exactly the file's scores, not rounded
    reported = json.loads((out / "eval_results.json").read_text())
    predictions, gold = [r["prediction"] for r in rows], [r["label"] for r in rows]
    assert pearsonr(predictions, gold)[0] == pytest.approx(reported["pearson"], abs=1e-9)
    assert spearmanr(predictions, gold)[0] == pytest.approx(reported["spearmanr"], abs=1e-9)


# --------------------------------------------------------------------------- folders, commands, start-up


def test_a_task_folder_is_recognised_by_its_files_whatever_its_name(tiny_model, tmp_path):
    data = sst2_files(tmp_path / "data" / "sst")
    assert main(glue_args(tiny_model, data, tmp_path / "run", "--max-steps", "1")) == 0
    assert (tmp_path / "run" / "model.safetensors").exists()


def test_a_bare_command_group_prints_its_help(capsys):
    assert main([]) == 0
    assert "finetune" in capsys.readouterr().out
    assert main(["finetune"]) == 0
    assert "glue" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["env"], ["finetune", "glue", "--help"]])
def test_start_up_imports_no_heavy_library(argv):
    probe = ("import sys; from bert_tasks.cli import main; code = main(%r); "
             "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'accelerate') if m in sys.modules))" % argv)
    done = subprocess.run([sys.executable, "-c", probe], env={**ENV, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_no_code_path_uses_a_private_module_of_a_dependency():
    package = HERE.parent / "bert_tasks"
    private = re.compile(r"^\s*(?:from|import)\s+(?!bert_tasks|\.)([A-Za-z_]\w*)\.(_\w+)", re.M)
    found = {str(p.relative_to(package)): private.findall(p.read_text()) for p in package.rglob("*.py")}
    assert not {k: v for k, v in found.items() if v}
