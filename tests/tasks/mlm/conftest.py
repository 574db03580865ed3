"""Fixtures for the MLM tests: a synthetic corpus of made-up words and a small WordPiece tokenizer trained on it."""

import random

import datasets
import pytest

SYLLABLES = ["ka", "lo", "mi", "ten", "ra", "sun", "vo", "bel", "ti", "dor", "qua", "zen"]


def make_documents(n: int, seed: int = 0, min_words: int = 3, max_words: int = 40) -> list[str]:
    """Documents of made-up words (1–4 syllables, so a small vocabulary splits many of them into pieces)."""
    rng = random.Random(seed)
    lexicon = ["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(300)]
    docs = []
    for _ in range(n):
        words = [rng.choice(lexicon) for _ in range(rng.randint(min_words, max_words))]
        words[0] = words[0].capitalize()
        docs.append(" ".join(words) + rng.choice([".", "!", ", ok."]))
    return docs


@pytest.fixture(autouse=True)
def datasets_cache_in_tmp(tmp_path, monkeypatch):
    """Keep every Arrow cache file of a test inside its own tmp_path."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_datasets_cache"))


@pytest.fixture(scope="session")
def documents() -> list[str]:
    return make_documents(200)


@pytest.fixture(scope="session")
def tokenizer(documents):
    from bert_tasks.tasks.mlm.tokenizer import train_wordpiece

    return train_wordpiece(iter(documents), vocab_size=150, lowercase=True, min_frequency=1, model_max_length=64)


@pytest.fixture(scope="session")
def make_docs():
    return make_documents
