"""tokenize_and_pack: packed sequences lose no token and are full length; line-by-line truncates; word starts."""

from collections import Counter

import datasets
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from bert_tasks.tasks.mlm import corpus as corpus_module
from bert_tasks.tasks.mlm.corpus import tokenize_and_pack

MAX_LEN = 24


@pytest.fixture
def docs(make_docs):
    return make_docs(60, seed=7, min_words=1, max_words=30)


def content(tokenizer, ids):
    special = set(tokenizer.all_special_ids)
    return [t for t in ids if t not in special]


@pytest.fixture
def small_map_batches(monkeypatch):
    """Several map batches, so sequences must carry over from one batch to the next."""
    monkeypatch.setattr(corpus_module, "MAP_BATCH_SIZE", 7)


def test_packing_loses_no_token_and_fills_every_sequence(tokenizer, docs, small_map_batches):
    packed = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, MAX_LEN)
    rows = packed["input_ids"]
    assert [len(r) for r in rows[:-1]] == [MAX_LEN] * (len(rows) - 1)
    assert 2 < len(rows[-1]) <= MAX_LEN
    assert all(r[0] == tokenizer.cls_token_id and r[-1] == tokenizer.sep_token_id for r in rows)
    expected = [t for doc in docs for t in tokenizer(doc, add_special_tokens=False).input_ids]
    packed_content = [t for r in rows for t in content(tokenizer, r)]
    assert Counter(packed_content) == Counter(expected)
    assert packed_content == expected, "documents keep their order"
    # one [SEP] between consecutive documents, except where a sequence boundary already separates them
    inner_seps = sum(r[1:-1].count(tokenizer.sep_token_id) for r in rows)
    assert len(docs) - len(rows) <= inner_seps <= len(docs) - 1
    assert all(r[1] != tokenizer.sep_token_id for r in rows)


def test_packed_features_describe_the_tokens(tokenizer, docs):
    packed = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, MAX_LEN)
    assert packed.column_names == ["input_ids", "token_type_ids", "attention_mask", "special_tokens_mask", "word_starts"]
    special = set(tokenizer.all_special_ids)
    for row in packed:
        n = len(row["input_ids"])
        assert row["token_type_ids"] == [0] * n and row["attention_mask"] == [1] * n
        assert row["special_tokens_mask"] == [int(t in special) for t in row["input_ids"]]
        assert len(row["word_starts"]) == n and row["word_starts"][:2] == [1, 1] and row["word_starts"][-1] == 1
        pieces = tokenizer.convert_ids_to_tokens(row["input_ids"])
        # with a WordPiece vocabulary, word starts are exactly the pieces without '##' (computed without looking at it)
        assert row["word_starts"][2:-1] == [int(not p.startswith("##")) for p in pieces[2:-1]]


def test_without_document_separator_only_content_sits_inside(tokenizer, docs):
    packed = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, MAX_LEN, document_separator=False)
    expected = [t for doc in docs for t in tokenizer(doc, add_special_tokens=False).input_ids]
    assert [t for r in packed["input_ids"] for t in r[1:-1]] == expected


def test_streamed_packing_matches_in_memory_packing(tokenizer, docs, small_map_batches):
    in_memory = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, MAX_LEN)
    stream = datasets.IterableDataset.from_generator(lambda: ({"text": d} for d in docs))
    streamed = tokenize_and_pack(stream, tokenizer, MAX_LEN)
    assert isinstance(streamed, datasets.IterableDataset)
    assert list(streamed) == list(in_memory)
    assert list(streamed) == list(in_memory), "the packed stream restarts cleanly for a second epoch"


def test_line_by_line_truncates_each_document(tokenizer, docs):
    lines = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}), tokenizer, MAX_LEN, line_by_line=True)
    assert len(lines) == len(docs)
    for doc, row in zip(docs, lines):
        full = tokenizer(doc).input_ids
        ids = row["input_ids"]
        assert ids == (full if len(full) <= MAX_LEN else full[: MAX_LEN - 1] + [tokenizer.sep_token_id])
        assert row["special_tokens_mask"][0] == row["special_tokens_mask"][-1] == 1
    assert any(len(tokenizer(d).input_ids) > MAX_LEN for d in docs) and any(len(r) < MAX_LEN for r in lines["input_ids"])
    streamed = tokenize_and_pack(datasets.Dataset.from_dict({"text": docs}).to_iterable_dataset(), tokenizer, MAX_LEN, line_by_line=True)
    assert list(streamed) == list(lines)


def test_fingerprint_follows_tokenizer_and_settings(tokenizer, docs, make_docs):
    from bert_tasks.tasks.mlm.tokenizer import train_wordpiece

    raw = datasets.Dataset.from_dict({"text": docs})
    base = tokenize_and_pack(raw, tokenizer, MAX_LEN)._fingerprint
    assert tokenize_and_pack(raw, tokenizer, MAX_LEN)._fingerprint == base
    other_tokenizer = train_wordpiece(iter(make_docs(50, seed=1)), vocab_size=90, min_frequency=1)
    variants = {
        tokenize_and_pack(raw, tokenizer, MAX_LEN + 8)._fingerprint,
        tokenize_and_pack(raw, tokenizer, MAX_LEN, line_by_line=True)._fingerprint,
        tokenize_and_pack(raw, tokenizer, MAX_LEN, document_separator=False)._fingerprint,
        tokenize_and_pack(raw, other_tokenizer, MAX_LEN)._fingerprint,
    }
    assert base not in variants and len(variants) == 4


def byte_level_bpe_tokenizer(texts):
    """A fast tokenizer with no '##' continuation marks at all."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<s>", "</s>", "<mask>", "<unk>"]
    backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>", unk_token="<unk>"
    )


def test_word_starts_come_from_word_ids_for_any_fast_tokenizer(docs):
    bpe = byte_level_bpe_tokenizer(docs)
    raw = datasets.Dataset.from_dict({"text": docs[:10]})
    for row, doc in zip(tokenize_and_pack(raw, bpe, 64, line_by_line=True), docs):
        encoding = bpe(doc, truncation=True, max_length=64)
        word_ids = encoding.word_ids()
        assert row["input_ids"] == encoding.input_ids
        expected = [int(i == 0 or w is None or w != word_ids[i - 1]) for i, w in enumerate(word_ids)]
        assert row["word_starts"] == expected
        assert sum(row["word_starts"][1:-1]) == len(doc.split()) + doc.count(",") + doc.count(".") + doc.count("!")
    packed = tokenize_and_pack(raw, bpe, 32)
    expected = [t for doc in docs[:10] for t in bpe(doc, add_special_tokens=False).input_ids]
    assert [t for r in packed["input_ids"] for t in content(bpe, r)] == expected
