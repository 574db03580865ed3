"""Parity of our encoder with transformers through the checkpoint bridge, both directions."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import transformers

from bert_tasks.checkpoint import BUNDLED_SHA256, bundled_model_path, load_pretrained, save_pretrained, sha256_file
from bert_tasks.errors import BertTasksError

TOL = 1e-5
# Odd sizes catch shape bugs that square, power-of-two sizes hide.
TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, type_vocab_size=2)

#: (transformers class prefix, its config class, the config a family differs in): every family our encoder runs
FAMILIES = {
    "bert": ("Bert", transformers.BertConfig, {}),
    # RoBERTa's own numbers: positions start after the padding id 1, one token type, LayerNorm eps 1e-5
    "roberta": ("Roberta", transformers.RobertaConfig, dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)),
    "xlm-roberta": ("XLMRoberta", transformers.XLMRobertaConfig, dict(pad_token_id=1, type_vocab_size=1, layer_norm_eps=1e-5)),
    # ELECTRA: embeddings of an odd size of their own (21), projected to the hidden size 32
    "electra": ("Electra", transformers.ElectraConfig, dict(embedding_size=21)),
    # DistilBERT's own names; no token types
    "distilbert": ("DistilBert", transformers.DistilBertConfig, dict(type_vocab_size=None)),
}
#: DistilBERT's names for BERT's settings (its config class maps hidden_size, layers and heads itself)
DISTILBERT_NAMES = {"intermediate_size": "hidden_dim", "hidden_dropout_prob": "dropout",
                    "attention_probs_dropout_prob": "attention_dropout", "classifier_dropout": "seq_classif_dropout"}
HEAD_CASES = [
    ("Model", None, {}),
    ("ForQuestionAnswering", "squad", {}),
    ("ForSequenceClassification", "glue", {"num_labels": 3}),
    ("ForSequenceClassification", "glue", {"num_labels": 1}),
    ("ForMaskedLM", "mlm", {}),
]
#: (family, transformers class, task, head config): every head of every family
CASES = [(family, FAMILIES[family][0] + suffix, task, extra) for family in FAMILIES for suffix, task, extra in HEAD_CASES]
OUTPUTS = {None: ("last_hidden_state", "pooler_output"), "squad": ("start_logits", "end_logits"),
           "glue": ("logits",), "mlm": ("logits",)}
#: outputs a family's bare encoder has (ELECTRA's and DistilBERT's have no pooler)
BARE = {"electra": ("last_hidden_state",), "distilbert": ("last_hidden_state",)}


def make_batch(seed: int = 0, family: str = "bert"):
    """3 right-padded rows, the padding holding the family's padding id; BERT's and ELECTRA's use both token types."""
    extra = FAMILIES[family][2]
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, TINY["vocab_size"], (3, 13), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0  # padding in the batch
    mask[2, 4:] = 0
    ids = ids.masked_fill(mask == 0, extra.get("pad_token_id", 0))
    types = torch.zeros_like(ids)
    if family in ("bert", "electra"):
        types[:, 6:] = 1  # both token types
    if family == "distilbert":
        types = None  # DistilBERT takes no token types
    return ids, mask, types


def hf_model(arch: str, extra: dict, seed: int = 0, family: str = "bert", **overrides):
    torch.manual_seed(seed)
    config_class, family_config = FAMILIES[family][1], FAMILIES[family][2]
    settings = {**TINY, **family_config, **extra, **overrides}
    if family == "distilbert":
        settings = {DISTILBERT_NAMES.get(k, k): v for k, v in settings.items() if k != "type_vocab_size"}
        settings.setdefault("qa_dropout", settings.get("dropout", 0.1))
    return getattr(transformers, arch)(config_class(**settings)).eval()


def hf_run(hf, ids, mask, types, **labels):
    """transformers' forward; DistilBERT's takes no token types."""
    return hf(input_ids=ids, attention_mask=mask, **({} if types is None else {"token_type_ids": types}), **labels)


def max_diff(a, b, names, mask=None):
    """Over every position, padded ones included (``mask`` only documents which are)."""
    return max((getattr(a, n) - getattr(b, n)).abs().max().item() for n in names)


def outputs(family, task):
    return BARE.get(family, OUTPUTS[None]) if task is None else OUTPUTS[task]


CASE_IDS = [f"{family}-{arch}-{extra}" for family, arch, _, extra in CASES]


@pytest.mark.parametrize("family,arch,task,extra", CASES, ids=CASE_IDS)
def test_hf_checkpoint_loads_with_identical_outputs(tmp_path, family, arch, task, extra):
    hf = hf_model(arch, extra, family=family)
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path, task=task, num_labels=extra.get("num_labels")).eval()
    assert ours.config.model_type == family
    ids, mask, types = make_batch(family=family)
    with torch.no_grad():
        diff = max_diff(hf_run(hf, ids, mask, types), ours(ids, mask, types), outputs(family, task), mask)
    assert diff <= TOL


@pytest.mark.parametrize("family,arch,task,extra", CASES, ids=CASE_IDS)
def test_saved_model_loads_in_transformers_identically(tmp_path, family, arch, task, extra, caplog):
    hf = hf_model(arch, extra, family=family)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_pretrained(tmp_path / "hf", task=task, num_labels=extra.get("num_labels")).eval()
    save_pretrained(ours, tmp_path / "ours")
    with caplog.at_level(logging.WARNING):
        reloaded, info = getattr(transformers, arch).from_pretrained(tmp_path / "ours", output_loading_info=True)
    assert not info["unexpected_keys"] and not info["missing_keys"] and not info["mismatched_keys"]
    reloaded.eval()
    ids, mask, types = make_batch(1, family=family)
    with torch.no_grad():
        assert max_diff(hf_run(reloaded, ids, mask, types), ours(ids, mask, types), outputs(family, task), mask) <= TOL
    # HF -> ours -> HF is lossless, bit for bit.
    before, after = hf.state_dict(), reloaded.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["architectures"] == [arch] and config["model_type"] == family
    assert not {"positions_from_padding", "pooler_dropout"} & set(config)  # implied by the model type
    if task == "glue":
        assert len(config["id2label"]) == extra["num_labels"] and len(config["label2id"]) == extra["num_labels"]


TRAINED = [(f, a, t, e) for f, a, t, e in CASES if t is not None]


@pytest.mark.parametrize("family,arch,task,extra", TRAINED, ids=[f"{f}-{a}-{e}" for f, a, _, e in TRAINED])
def test_one_training_step_matches(tmp_path, family, arch, task, extra):
    hf = hf_model(arch, extra, family=family, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  **({"qa_dropout": 0.0, "classifier_dropout": 0.0} if family == "distilbert" else {}))
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path, task=task, num_labels=extra.get("num_labels"))
    hf.train(); ours.train()
    ids, mask, types = make_batch(2, family=family)
    if task == "squad":
        labels = dict(start_positions=torch.tensor([1, 3, 0]), end_positions=torch.tensor([2, 5, 0]))
        out = ours(ids, mask, types)
        ce = torch.nn.functional.cross_entropy
        our_loss = (ce(out.start_logits, labels["start_positions"]) + ce(out.end_logits, labels["end_positions"])) / 2
    elif task == "glue" and extra["num_labels"] == 1:
        labels = dict(labels=torch.tensor([0.5, 2.0, 4.5]))
        our_loss = torch.nn.functional.mse_loss(ours(ids, mask, types).logits.squeeze(-1), labels["labels"])
    elif task == "glue":
        labels = dict(labels=torch.tensor([0, 2, 1]))
        our_loss = torch.nn.functional.cross_entropy(ours(ids, mask, types).logits, labels["labels"])
    else:
        target = torch.full_like(ids, -100)
        target[0, 2], target[1, 5], target[2, 1] = 7, 11, 13
        labels = dict(labels=target)
        picked = target != -100
        logits = ours(ids, mask, types, prediction_mask=picked).logits  # masked positions only
        our_loss = torch.nn.functional.cross_entropy(logits, target[picked])
    hf_loss = hf_run(hf, ids, mask, types, **labels).loss
    assert abs(hf_loss.item() - our_loss.item()) <= TOL
    hf_loss.backward(); our_loss.backward()
    from bert_tasks.model.keymap import hf_parts, key_table, ours_to_hf

    # our gradients under HF names, through the same table (fused q/k/v split back into three)
    pairs = key_table(task, TINY["num_hidden_layers"], family=family, projected=family == "electra")
    our_grads = ours_to_hf(pairs, {n: p.grad for n, p in ours.named_parameters() if p.grad is not None})
    hf_params = dict(hf.named_parameters(remove_duplicate=False))  # a tied weight under every name
    for hf_name in (h for hf, _ in pairs for h in hf_parts(hf)):
        g_hf, g_ours = hf_params[hf_name].grad, our_grads.get(hf_name)
        assert g_hf is not None and g_ours is not None, hf_name
        assert (g_hf - g_ours).abs().max().item() <= TOL, hf_name


def test_legacy_names_prefixless_and_bin_files(tmp_path):
    hf = hf_model("BertForSequenceClassification", {"num_labels": 3})
    state = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta").removeprefix("bert."): v
             for k, v in hf.state_dict().items()}
    torch.save(state, tmp_path / "pytorch_model.bin")
    hf.config.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path, task="glue", num_labels=3).eval()
    ids, mask, types = make_batch()
    with torch.no_grad():
        assert max_diff(hf(input_ids=ids, attention_mask=mask, token_type_ids=types), ours(ids, mask, types), ("logits",)) <= TOL


def test_missing_head_and_pooler_are_initialised_and_named(tmp_path, caplog):
    hf_model("BertForMaskedLM", {}).save_pretrained(tmp_path)  # no pooler, no classifier
    with caplog.at_level(logging.WARNING):
        model = load_pretrained(tmp_path, task="glue", num_labels=2)
    assert "classifier" in caplog.text and "pooler" in caplog.text
    assert model.classifier.weight.shape == (2, TINY["hidden_size"])


def test_backend_hf_returns_transformers_model(tmp_path):
    hf_model("BertForQuestionAnswering", {}).save_pretrained(tmp_path)
    model = load_pretrained(tmp_path, task="squad", backend="hf")
    assert isinstance(model, transformers.BertForQuestionAnswering)


def test_sinusoidal_positions_export_as_a_learned_table(tmp_path):
    from bert_tasks.model import BertConfig, BertForMaskedLM

    ours = BertForMaskedLM(BertConfig(**{**TINY, "position_embedding_type": "sinusoidal"})).eval()
    save_pretrained(ours, tmp_path)
    hf = transformers.BertForMaskedLM.from_pretrained(tmp_path).eval()
    again = load_pretrained(tmp_path, task="mlm").eval()
    assert again.config.position_embedding_type == "sinusoidal"
    ids, mask, types = make_batch()
    with torch.no_grad():
        assert max_diff(hf(input_ids=ids, attention_mask=mask, token_type_ids=types), ours(ids, mask, types), ("logits",)) <= TOL
        assert max_diff(again(ids, mask, types), ours(ids, mask, types), ("logits",)) == 0


# ---------------------------------------------------------------- bad checkpoints: one clear error each


def test_folder_without_config(tmp_path):
    with pytest.raises(BertTasksError, match="no config.json"):
        load_pretrained(tmp_path)


def test_a_model_type_our_encoder_lacks_is_one_line_suggesting_the_hf_backend(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    with pytest.raises(BertTasksError, match="model_type 'deberta-v2' is not one our encoder implements .*--backend hf"):
        load_pretrained(tmp_path)


def test_shape_mismatch_names_the_weight(tmp_path):
    hf_model("BertModel", {}).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["vocab_size"] = 100
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(BertTasksError, match=r"shape mismatch for 'embeddings.word_embeddings.weight'"):
        load_pretrained(tmp_path)


def test_truncated_safetensors(tmp_path):
    hf_model("BertModel", {}).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(BertTasksError, match="truncated or corrupt") as err:
        load_pretrained(tmp_path)
    assert str(weights) in str(err.value)


def test_unknown_weight_is_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    hf_model("BertModel", {}).save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    state["encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(3)
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(BertTasksError, match="has no place"):
        load_pretrained(tmp_path)


def test_missing_encoder_weight_is_an_error(tmp_path):
    from safetensors.torch import load_file, save_file

    hf_model("BertModel", {}).save_pretrained(tmp_path)
    state = load_file(tmp_path / "model.safetensors")
    del state["encoder.layer.2.output.dense.weight"]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(BertTasksError, match="lacks encoder weights"):
        load_pretrained(tmp_path)


# ---------------------------------------------------------------- the real MiniLM checkpoint


def test_bundled_minilm_is_verified_and_matches_transformers():
    folder = bundled_model_path()
    assert sha256_file(folder / "model.safetensors") == BUNDLED_SHA256
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    sentences = ["The quick brown fox jumps over the lazy dog.", "BERT reads both directions.",
                 "A much longer sentence, with punctuation; numbers like 1,234 and unusual words: cryptozoology!"]
    batch = tokenizer(sentences[:2], sentences[1:], padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any() and (batch["token_type_ids"] == 1).any()
    hf = transformers.BertModel.from_pretrained(folder, attn_implementation="sdpa").eval()
    ours = load_pretrained("minilm").eval()
    with torch.no_grad():
        a, b = hf(**batch), ours(**batch)
    assert (a.last_hidden_state - b.last_hidden_state).abs().max().item() <= TOL
    assert (a.pooler_output - b.pooler_output).abs().max().item() <= TOL


def test_distilbert_sinusoidal_positions_are_our_fixed_table(tmp_path):
    """DistilBERT's sinusoidal_pos_embds is our sinusoidal table: the same numbers, recomputed, saved back as its switch."""
    hf = hf_model("DistilBertForSequenceClassification", {"num_labels": 3}, family="distilbert", sinusoidal_pos_embds=True)
    hf.save_pretrained(tmp_path / "hf")
    ours = load_pretrained(tmp_path / "hf", task="glue", num_labels=3).eval()
    assert ours.config.position_embedding_type == "sinusoidal"
    ids, mask, types = make_batch(family="distilbert")
    with torch.no_grad():
        assert max_diff(hf_run(hf, ids, mask, types), ours(ids, mask, types), ("logits",)) <= TOL
    save_pretrained(ours, tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["sinusoidal_pos_embds"] is True and "bert_tasks_position_embeddings" not in config
    assert "position_embedding_type" not in config and "type_vocab_size" not in config and config["dim"] == TINY["hidden_size"]
    reloaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        assert max_diff(hf_run(reloaded, ids, mask, types), ours(ids, mask, types), ("logits",)) <= TOL


@pytest.mark.parametrize("family", list(FAMILIES))
def test_dropout_sits_where_transformers_puts_it(family):
    """Train mode with every hidden dropout at p = 1 is deterministic (all dropped): equal outputs mean the same
    dropout placement (DistilBERT has none on the attention output; the others do)."""
    prefix = FAMILIES[family][0]
    hf = hf_model(f"{prefix}Model", {}, family=family, hidden_dropout_prob=1.0, attention_probs_dropout_prob=0.0)
    with torch.no_grad():  # biases and LayerNorms too: at their zero init a misplaced dropout would hide
        for p in hf.parameters():
            p.normal_(0.0, 0.3)
    ours = load_pretrained_from(hf)
    hf.train(); ours.train()
    ids, mask, types = make_batch(family=family)
    with torch.no_grad():
        assert max_diff(hf_run(hf, ids, mask, types), ours(ids, mask, types), ("last_hidden_state",)) <= TOL


def load_pretrained_from(hf):
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        hf.save_pretrained(folder)
        return load_pretrained(folder)


@pytest.mark.parametrize("family", ["bert", "roberta", "xlm-roberta"])
def test_a_base_model_with_its_pooler_takes_a_classifier(tmp_path, family):
    """roberta-base ships RobertaModel's pooler, which RoBERTa's classifier does not read: it goes unused."""
    hf_model(f"{FAMILIES[family][0]}Model", {}, family=family).save_pretrained(tmp_path)
    model = load_pretrained(tmp_path, task="glue", num_labels=3)
    assert model.config.model_type == family
