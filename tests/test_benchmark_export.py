"""benchmarks/export.py's plumbing, without a model: its timing loop, tables, targets and SST-2 reader (the run itself is
``python -m benchmarks export --quick``)."""

import numpy as np

from benchmarks import export as bench


def test_measure_gives_latency_percentiles_and_throughput_per_engine():
    calls = []

    def engine(texts):
        calls.append(len(texts))
        return np.zeros((len(texts), 2))

    figures = bench.measure({"a": engine, "b": engine}, ["x"] * 10, ["y"] * 4, batch_size=4, rounds=2)
    assert set(figures) == {"a", "b"}
    for f in figures.values():
        assert 0 <= f["p50_ms"] <= f["p99_ms"] and f["per_s"] > 0
    assert calls.count(1) == 2 * 2 * 4 and calls.count(4) >= 2 * 2 * 2  # one sentence at a time; batches of 4


def test_accuracy_and_reader(tmp_path):
    dev = tmp_path / "dev.tsv"
    dev.write_text('sentence\tlabel\na "quoted" film\t1\nbad\t0\nfine\t1\n')
    sentences, labels = bench.read_sst2(dev, 2)
    assert sentences == ['a "quoted" film', "bad"] and labels == [1, 0]
    assert bench.accuracy(lambda t: np.array([[0.0, 1.0]] * len(t)), sentences, labels, batch_size=1) == 0.5


def test_measure_sorts_batches_by_the_given_size():
    seen = []

    def engine(records):
        seen.append([r["n"] for r in records])
        return [""] * len(records)

    items = [{"n": n} for n in (5, 1, 4, 2, 3)]
    bench.measure({"qa": engine}, items, items[:1], batch_size=2, rounds=1, size=lambda r: r["n"])
    assert seen[-3:] == [[1, 2], [3, 4], [5]]  # after the warm-up and the one latency call


def rows(ours_p50, int8_p50):
    return {1: {bench.OURS: {"p50_ms": ours_p50}, bench.INT8: {"p50_ms": int8_p50}}}


def test_targets_state_met_and_missed_with_their_figures():
    met = bench.targets("dev F1", {bench.FP32: 50.0, bench.INT8: 49.5}, rows(10.0, 4.0))
    assert "**met**" in met[0] and "fp32 50.00, int8 49.50: -0.50 points" in met[0]
    assert "1 thread(s)" in met[1] and "**met**" in met[1] and "2.50x" in met[1]
    missed = bench.targets("dev accuracy", {bench.FP32: 90.0, bench.INT8: 88.5}, rows(10.0, 6.0))
    assert "**missed**" in missed[0] and "-1.50 points" in missed[0]
    assert "**missed**" in missed[1] and "1.67x" in missed[1]
    assert "**met**" in bench.targets("f1", {bench.FP32: 50.0, bench.INT8: 51.0}, rows(2.0, 1.0))[0]  # int8 better


def test_table_has_a_column_per_metric_and_per_thread_figure():
    figures = {t: {"a": {"p50_ms": 1.0, "p99_ms": 2.0, "per_s": 1234.5}} for t in (1, 2)}
    lines = bench.table(["dev EM", "dev F1"], {"a": [10.0, 20.5]}, {"a": 2_500_000}, figures, "q")
    assert lines[0].count("|") == lines[1].count("|") == lines[2].count("|") == 2 + 2 + 1 + 6
    assert "1 thr q/s" in lines[0] and "2 thr p99 ms" in lines[0]
    assert lines[2] == "| a | 10.00 | 20.50 | 2.5 MB | 1.0 | 2.0 | 1,234.5 | 1.0 | 2.0 | 1,234.5 |"
