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
