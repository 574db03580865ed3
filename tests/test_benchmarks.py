"""The benchmark suite's plumbing: discovery, and encoder_speed end to end on a tiny model."""

import pytest

from benchmarks import encoder_speed
from benchmarks.__main__ import discover
from benchmarks.peak import measure_matmul_peak

TINY_ARGS = ["--configs", "tiny", "--seq", "16", "--rounds", "1", "--min-seconds", "0", "--no-record"]


def test_discovery_follows_the_module_convention():
    found = discover()
    assert {"encoder_speed", "peak"} <= set(found)
    assert not any(name.startswith("_") for name in found)
    assert "throughput" in found["encoder_speed"]


def test_encoder_speed_tiny_run_is_positive_and_at_parity(capsys, tmp_path, monkeypatch):
    from benchmarks import _record

    monkeypatch.setattr(_record, "RESULTS", tmp_path / "RESULTS.md")  # belt and braces: --no-record must not write
    results = encoder_speed.run(encoder_speed.parse_args(TINY_ARGS + ["--peak-seconds", "0.05", "--unpad"]))
    assert [(r.config, r.seq, r.dtype) for r in results] == [("tiny", 16, "fp32"), ("tiny", 16, "bf16")]
    for r in results:
        assert r.ours > 0 and r.hf > 0 and r.ratio > 0
        assert r.parity <= 1e-5
        assert r.peak and r.peak > 0 and 0 < r.mfu(r.ours) < 1
        unpadded = r.variants["unpad"]
        assert unpadded.tokens_per_s > 0 and unpadded.ratio > 0 and unpadded.parity <= 1e-5
    assert "ours+unpad/HF" in encoder_speed.table(results)

    encoder_speed.main(TINY_ARGS + ["--dtypes", "fp32", "--peak-seconds", "0"])
    out = capsys.readouterr().out
    assert "| tiny | 16 | 2 | fp32 |" in out and "no optimizer" in out
    assert not (tmp_path / "RESULTS.md").exists()


def test_parity_failure_stops_before_timing(monkeypatch):
    monkeypatch.setattr(encoder_speed, "parity", lambda *a: 1.0)
    with pytest.raises(AssertionError, match="differ"):
        encoder_speed.run(encoder_speed.parse_args(TINY_ARGS + ["--dtypes", "fp32", "--peak-seconds", "0"]))


def test_peak_is_positive():
    assert measure_matmul_peak(seconds_budget=0.05) > 0


# --------------------------------------------------------------------------- the GPU proof


def test_gpu_proof_without_a_gpu_says_so_in_one_line_and_records_nothing(capsys, tmp_path, monkeypatch):
    import torch

    from benchmarks import _record, gpu

    monkeypatch.setattr(_record, "RESULTS", tmp_path / "RESULTS.md")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    gpu.main([])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no CUDA GPU here")
    assert not (tmp_path / "RESULTS.md").exists()


def test_gpu_proof_dry_run_checks_parity_and_times_every_variant(capsys, tmp_path, monkeypatch):
    """The proof's parity and speed parts, on the CPU at toy sizes (the same code the GPU runs)."""
    from benchmarks import _record, gpu

    monkeypatch.setattr(_record, "RESULTS", tmp_path / "RESULTS.md")
    gpu.main(["--cpu-dry-run", "--parts", "parity", "speed", "--steps", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    for head in ("encoder", "squad", "glue", "mlm"):
        row = next(line for line in out.splitlines() if line.startswith(f"| {head} |"))
        fp32, unpadded = (float(cell) for cell in row.split("|")[2:4])
        assert fp32 <= 1e-5 and unpadded <= 1e-5  # the packed-token (varlen) path too
    assert "| tiny | 32 | 4 |" in out and "ours+unpad tok/s" in out
    assert not (tmp_path / "RESULTS.md").exists()


@pytest.mark.slow
def test_gpu_proof_dry_run_end_to_end(capsys, tmp_path, monkeypatch):
    """All four parts on the CPU: SST-2 against the Trainer, and FSDP and ZeRO-2 runs (2 CPU processes) that
    save folders transformers loads whole, with the plain run's accuracy."""
    from benchmarks import _record, gpu

    if not (_record.DATA / "SST-2" / "train.tsv").is_file():
        pytest.skip("needs ../shared/data/SST-2")
    monkeypatch.setattr(_record, "RESULTS", tmp_path / "RESULTS.md")
    gpu.main(["--cpu-dry-run", "--steps", "1", "--rounds", "1"])
    out = capsys.readouterr().out
    assert "| bert-tasks finetune glue |" in out and "| HF Trainer, dynamic padding |" in out
    import importlib.util

    for engine in ("fsdp", "zero2") if importlib.util.find_spec("deepspeed") else ("fsdp",):
        row = next(line for line in out.splitlines() if line.startswith(f"| {engine} |"))
        assert "+0.00 pts" in row and row.rstrip(" |").endswith("True"), row
