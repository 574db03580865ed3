"""WordPiece training: special-token ids, round trip, and a saved folder that AutoTokenizer loads."""

import json

import pytest
from transformers import AutoTokenizer, BertTokenizerFast

from bert_tasks.errors import BertTasksError
from bert_tasks.tasks.mlm.tokenizer import load_tokenizer, train_wordpiece

SAMPLES = ["Kaloten mi, RASUN vobel!", "Dorqua zenti ka lo.", "Téndor kalo mi. ra"]


def normalised(tokenizer, text):
    """The text as the tokenizer sees it: normalised, then one space between words (punctuation is its own word)."""
    backend = tokenizer.backend_tokenizer
    words = backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
    return " ".join(word for word, _ in words)


def without_spaces(text):
    return text.replace(" ", "")


def test_special_tokens_come_first_with_pad_zero(tokenizer):
    assert [tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.mask_token_id] == [0, 1, 2, 3, 4]
    assert len(tokenizer) <= 150
    assert tokenizer.model_max_length == 64
    assert any(token.startswith("##") for token in tokenizer.get_vocab())


def test_encode_decode_recovers_normalised_text(tokenizer):
    for text in SAMPLES:
        ids = tokenizer(text).input_ids
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        assert tokenizer.unk_token_id not in ids
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        # the WordPiece decoder glues punctuation to the word before it, as BERT's does
        assert without_spaces(decoded) == without_spaces(normalised(tokenizer, text))
        assert [w.strip(",.!") for w in decoded.split()] == [w for w in normalised(tokenizer, text).split() if w not in ",.!"]
    assert normalised(tokenizer, "Téndor RA") == "tendor ra"


def test_pairs_get_bert_token_type_ids(tokenizer):
    encoding = tokenizer("kalo mi", "ten ra")
    tokens = tokenizer.convert_ids_to_tokens(encoding.input_ids)
    first_sep = tokens.index("[SEP]")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and first_sep < len(tokens) - 1
    assert encoding.token_type_ids == [0] * (first_sep + 1) + [1] * (len(tokens) - first_sep - 1)


def test_saved_folder_loads_with_auto_tokenizer(tokenizer, tmp_path):
    tokenizer("kalo mi " * 20, truncation=True, max_length=8)  # leaves truncation set in the backend
    tokenizer.save_pretrained(tmp_path / "tok")
    assert json.loads((tmp_path / "tok" / "tokenizer.json").read_text())["truncation"] is None
    assert {"tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= {p.name for p in (tmp_path / "tok").iterdir()}
    vocab_lines = (tmp_path / "tok" / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(vocab_lines) == len(tokenizer)
    loaded = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert isinstance(loaded, BertTokenizerFast) and loaded.is_fast
    assert loaded.model_max_length == 64 and loaded.mask_token == "[MASK]" and loaded.pad_token_id == 0
    for text in SAMPLES:
        assert loaded(text).input_ids == tokenizer(text).input_ids
    assert load_tokenizer(tmp_path / "tok")("kalo").input_ids == tokenizer("kalo").input_ids


def test_cased_vocabulary_keeps_case(documents):
    cased = train_wordpiece(iter(documents), vocab_size=200, lowercase=False, min_frequency=1)
    assert any(token[0].isupper() for token in cased.get_vocab())
    assert cased.decode(cased("Kalo").input_ids, skip_special_tokens=True) == "Kalo"


def test_same_text_gives_the_same_ids_whether_batched_or_not(documents):
    one_by_one = train_wordpiece(iter(documents), vocab_size=120, min_frequency=1)
    batched = train_wordpiece((documents[i : i + 16] for i in range(0, len(documents), 16)), vocab_size=120, min_frequency=1)
    assert one_by_one.get_vocab() == batched.get_vocab()


@pytest.mark.parametrize("vocab_size", [3, 5])
def test_vocabulary_without_room_beside_special_tokens_is_rejected(documents, vocab_size):
    with pytest.raises(BertTasksError, match="special tokens"):
        train_wordpiece(iter(documents), vocab_size=vocab_size)


def test_vocabulary_smaller_than_the_alphabet_is_rejected(documents):
    with pytest.raises(BertTasksError, match=r"vocab_size 12 is too small.*need \d+ entries"):
        train_wordpiece(iter(documents), vocab_size=12, min_frequency=1)


def test_no_text_is_rejected():
    with pytest.raises(BertTasksError, match="no text"):
        train_wordpiece(iter(["", "   "]), vocab_size=100)


def test_missing_tokenizer_folder_is_one_line_error(tmp_path):
    with pytest.raises(BertTasksError) as err:
        load_tokenizer(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("streaming", [False, True])
def test_run_trains_a_tokenizer_on_its_train_split_or_loads_the_named_one(tmp_path, documents, streaming):
    from bert_tasks.tasks.mlm.config import MlmDataConfig
    from bert_tasks.tasks.mlm.corpus import load_corpus
    from bert_tasks.tasks.mlm.tokenizer import load_or_train_tokenizer

    (tmp_path / "t.txt").write_text("\n".join(documents) + "\n", encoding="utf-8")
    cfg = MlmDataConfig(
        train_files=[str(tmp_path / "t.txt")], vocab_size=140, min_frequency=1, max_seq_length=32, streaming=streaming, streaming_validation_lines=10
    )
    corpus = load_corpus(cfg.validate())
    trained = load_or_train_tokenizer(cfg, corpus["train"])
    assert len(trained) == 140 and trained.model_max_length == 512
    trained.save_pretrained(tmp_path / "tok")
    cfg.tokenizer = str(tmp_path / "tok")
    assert load_or_train_tokenizer(cfg).get_vocab() == trained.get_vocab()
