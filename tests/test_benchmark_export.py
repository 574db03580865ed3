"""benchmarks/export.py's plumbing, without a model: its timing loop and its SST-2 reader (the run itself is
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
