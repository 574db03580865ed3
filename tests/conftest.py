"""Shared test setup: everything runs offline, on tiny models with odd sizes."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import sys
from pathlib import Path

# helper modules beside this file (toy.py, cli_args.py) import from every test folder
sys.path.insert(0, str(Path(__file__).resolve().parent))
