"""Where a model comes from: the bundled MiniLM, a local folder, or a Hub download (offline first)."""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download

from ..errors import BertTasksError
from ..io import input_problem
from .bundled import BUNDLED_NAMES, bundled_model_path
from .hub import require_hub


def resolve_model_dir(name_or_path: str | os.PathLike | None) -> Path:
    """A local folder for ``name_or_path``: the bundled MiniLM, a folder, or a Hub download."""
    if name_or_path is None or str(name_or_path).lower() in BUNDLED_NAMES:
        return bundled_model_path()
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        problem = input_problem(path / "config.json")
        if problem == "does not exist":
            raise BertTasksError("no config.json in this folder; is it a Hugging Face model folder?", file=path)
        if problem is not None:
            raise BertTasksError(f"the model config {problem}", file=path / "config.json")
        return path
    if path.exists():
        raise BertTasksError("expected a model folder, got a file", file=path)
    local = str(name_or_path).startswith((".", "/", "~")) or str(name_or_path).count("/") > 1
    if local or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()):  # runs/sst2 with ./runs here: a local path
        raise BertTasksError("no such model folder", file=path)
    return _download_from_hub(str(name_or_path))


def _download_from_hub(repo_id: str) -> Path:
    require_hub(f"model {repo_id!r}")
    try:
        return Path(
            snapshot_download(
                repo_id,
                allow_patterns=["config.json", "*.safetensors", "*.safetensors.index.json", "tokenizer*", "vocab.txt", "special_tokens_map.json"],
            )
        )
    except Exception as exc:  # offline, unknown id, or gated: all end the same way for the user
        raise BertTasksError(
            f"cannot get {repo_id!r} from the Hugging Face Hub ({type(exc).__name__}); "
            "pass a local model folder, or use the bundled checkpoint with --model minilm"
        ) from None
