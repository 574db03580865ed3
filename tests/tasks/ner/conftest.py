"""Generated token classification data: CoNLL columns and JSON Lines of invented sentences, with their tags."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

NAMES = ["Ada", "Alan", "Grace Hopper", "Linus"]
PLACES = ["London", "Paris", "New York", "Berlin"]
FILL = "the went to and met in a city saw".split()


def sentences(n: int, seed: int, longest: int = 7) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words, tags = [], []
        for _ in range(rng.randint(3, longest)):
            r = rng.random()
            if r < 0.25:
                w = rng.choice(NAMES).split()
                t = ["B-PER"] + ["I-PER"] * (len(w) - 1)
            elif r < 0.45:
                w = rng.choice(PLACES).split()
                t = ["B-LOC"] + ["I-LOC"] * (len(w) - 1)
            else:
                w, t = [rng.choice(FILL)], ["O"]
            words += w
            tags += t
        out.append((words, tags))
    return out


def write_conll(path: Path, rows, *, columns: int = 2, docstart: bool = True) -> Path:
    middle = " NN" * (columns - 2)
    text = ("-DOCSTART- -X-" + middle[3:] + " O\n\n" if docstart and columns > 2 else "-DOCSTART- O\n\n" if docstart else "")
    text += "".join("".join(f"{w}{middle} {t}\n" for w, t in zip(words, tags)) + "\n" for words, tags in rows)
    path.write_text(text, encoding="utf-8")
    return path


def write_jsonl(path: Path, rows, key: str = "tags") -> Path:
    path.write_text("".join(json.dumps({"tokens": w, key: t}) + "\n" for w, t in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ner_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("ner")
    write_conll(folder / "train.conll", sentences(48, 1))
    write_conll(folder / "dev.conll", sentences(12, 2))
    return folder
