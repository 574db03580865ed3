"""The model floor: the encoder, its heads and everything that describes them, one module a job.

========== ===========================================================================
spec       the typed model side, torch-free: a classifier's :class:`Pooling`
config     :class:`BertConfig`, the presets, config.json in both directions
fast       the encoder's speed helpers (packed dropout, unpadding), each with its measured gain
encoder    the encoder, top-down: embeddings, attention, the post-LN block, the stack, the pooler
pooling    the classifier poolings: mean, max, attention with four scores
heads      the task heads, and the head table that describes each once
families   BERT, RoBERTa, XLM-R, ELECTRA, DistilBERT: what each changes
keymap     the key table between transformers' parameter names and ours
========== ===========================================================================

Every public name is importable from here (``from bert_tasks.model import BertConfig``), imported on first use.
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "ACTIVATIONS": "config",
    "BertConfig": "config",
    "FAMILY_FIELDS": "config",
    "POOLER_ACTIVATIONS": "config",
    "PRESETS": "config",
    "BertModel": "encoder",
    "Embeddings": "encoder",
    "Encoder": "encoder",
    "EncoderLayer": "encoder",
    "EncoderOutput": "encoder",
    "FeedForward": "encoder",
    "Pooler": "encoder",
    "SelfAttention": "encoder",
    "init_weights": "encoder",
    "set_unpadding": "encoder",
    "DISTILBERT_BACKBONE": "families",
    "DISTILBERT_NAMES": "families",
    "FAMILIES": "families",
    "Family": "families",
    "ROBERTA_OPTIONS": "families",
    "get_family": "families",
    "Dropout": "fast",
    "LOW_LANES": "fast",
    "RealTokens": "fast",
    "check_dropout_rate": "fast",
    "dropout": "fast",
    "fused_dropout": "fast",
    "positions_after_padding": "fast",
    "sinusoidal_table": "fast",
    "takes_token_types": "fast",
    "unwrap": "fast",
    "BertForMaskedLM": "heads",
    "BertForQuestionAnswering": "heads",
    "BertForSequenceClassification": "heads",
    "ENCODER": "heads",
    "HEADS": "heads",
    "Head": "heads",
    "LogitsOutput": "heads",
    "MASKED_LM": "heads",
    "MaskedLMHead": "heads",
    "QuestionAnsweringOutput": "heads",
    "SEQUENCE": "heads",
    "SPAN": "heads",
    "get_head": "heads",
    "head_of": "heads",
    "BACKBONE_TABLE": "keymap",
    "HEAD_PREFIXES": "keymap",
    "HF_REDUNDANT": "keymap",
    "hf_parts": "keymap",
    "hf_to_ours": "keymap",
    "key_table": "keymap",
    "model_key_table": "keymap",
    "normalize_hf_key": "keymap",
    "ours_to_hf": "keymap",
    "pooling_rows": "keymap",
    "Additive": "pooling",
    "AttentionPooling": "pooling",
    "AttentionPoolingOver": "pooling",
    "ClsPooling": "pooling",
    "Concat": "pooling",
    "Dot": "pooling",
    "General": "pooling",
    "MaxPooling": "pooling",
    "MeanPooling": "pooling",
    "SCORES": "pooling",
    "max_pool": "pooling",
    "mean_pool": "pooling",
    "pooling_module": "pooling",
    "ATTENTION_QUERIES": "spec",
    "ATTENTION_SCORES": "spec",
    "POOLINGS": "spec",
    "POOLING_FIELDS": "spec",
    "POOLING_KEY": "spec",
    "Pooling": "spec",
    "pooled_model_type": "spec",
    "read_pooling_json": "spec",
})
