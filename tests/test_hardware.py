"""``mixed_precision: auto``: bf16 only where the CPU (or GPU) computes it natively, said at start-up and in env."""

from __future__ import annotations

import pytest
import torch
import yaml

import bert_tasks.training.precision as train
from bert_tasks.training import hardware
from bert_tasks.cli import main
from bert_tasks.config import TrainConfig
from bert_tasks.errors import BertTasksError

X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n\nprocessor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f {extra}\n"


@pytest.mark.parametrize("extra, found", [("avx512_bf16", "avx512_bf16"), ("amx_bf16 amx_tile", "amx_bf16"), ("", None)])
def test_the_bf16_flag_is_read_from_cpuinfo(extra, found, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(X86.format(extra=extra))
    assert hardware.cpu_bf16_flag(cpuinfo) == found
    assert "avx2" in hardware.cpu_flags(cpuinfo)


def test_arm_features_and_an_unreadable_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\n")
    assert "asimd" in hardware.cpu_flags(cpuinfo) and hardware.cpu_bf16_flag(cpuinfo) is None  # no bf16 matmul flag
    assert hardware.cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("flag, picked", [("avx512_bf16", "bf16"), (None, "no")])
def test_auto_picks_bf16_only_on_native_hardware(flag, picked, monkeypatch):
    monkeypatch.setattr(train, "cpu_bf16_flag", lambda *args: flag)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    precision, why = train.resolve_precision("auto")
    assert precision == picked and why.startswith("auto: this CPU")
    assert (flag or "no native bf16") in why
    for setting in ("no", "bf16"):  # an explicit choice is kept as it is
        assert train.resolve_precision(setting) == (setting, "set by train.mixed_precision")


def test_auto_is_the_default():
    assert TrainConfig().mixed_precision == "auto"


def test_a_run_says_and_records_what_auto_picked(tiny_model, tmp_path, capsys):
    data = tmp_path / "sst"
    data.mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (data / name).write_text("sentence\tlabel\n" + "".join(f"{w} film\t{i % 2}\n" for i, w in enumerate(["good", "bad"] * 6)))
    out = tmp_path / "run"
    assert main(["finetune", "glue", "--task", "sst2", "--model", str(tiny_model), "--data-dir", str(data),
                 "--output-dir", str(out), "--max-steps", "2", "--batch-size", "4", "--set", "train.num_threads=1"]) == 0
    err = capsys.readouterr().err
    assert "precision: no (auto: this CPU has no native bf16, so fp32)" in err  # conftest hides the CPU's bf16 flag
    assert yaml.safe_load((out / "recipe.yaml").read_text())["train"]["mixed_precision"] == "no"


def test_a_second_precision_in_one_process_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(train, "PROCESS_PRECISION", ["bf16"])
    with pytest.raises(BertTasksError, match="already trained in precision 'bf16'.*new process"):
        train.make_accelerator(TrainConfig(mixed_precision="no"))


@pytest.mark.parametrize("flag, shown", [("avx512_bf16", "auto: bf16 (this CPU computes bf16 natively: avx512_bf16)"),
                                         (None, "auto: fp32 (this CPU has no native bf16)")])
def test_env_says_what_auto_would_pick(flag, shown, capsys, monkeypatch):
    import bert_tasks.cli.general as general

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(general, "cpu_bf16_flag", lambda *args: flag)
    monkeypatch.setattr(general, "_device", lambda version: "cpu (x86_64)")
    assert main(["env"]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("mixed precision"))
    assert line.split(None, 2)[2] == shown
