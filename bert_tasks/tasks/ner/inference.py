"""Tag the entities of a text with a fine-tuned NER folder: the engine behind ``predict ner``.

The text is split into words as the tokenizer's pre-tokenizer splits it (whitespace and punctuation, through the
fast tokenizer's ``word_ids()`` and character offsets), which is where transformers' token-classification
pipeline puts its word boundaries; each word gets the tag of its first sub-token (``aggregation_strategy="first"``)
and adjacent words of one type form an entity: a new one starts at ``B-``/``S-``, after ``E-``/``S-``, and at an
``I-`` that follows ``O`` or another type (conlleval's rule). An entity's score is the mean of its words' scores;
``start``/``end`` are character offsets into the text, and ``word`` is ``text[start:end]``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...checkpoint.load import load_pretrained
from ...checkpoint.onnx import is_export_folder, load_export
from ...checkpoint.locate import resolve_model_dir
from ...checkpoint.tokenizer import check_vocab_fits, load_tokenizer, max_tokens
from ...config import trained_settings
from ...errors import BertTasksError
from ...protocol import model_inputs
from ...training.precision import computing_in, folder_precision
from .config import NerDataConfig
from .data import TAG
from .features import encode, word_logits
from .task import NerTask

log = logging.getLogger(__name__)


def split_words(text: str, tokenizer: Any) -> list[tuple[int, int]]:
    """(start, end) of every word of ``text``: the tokenizer's own pre-tokenized words."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    spans: dict[int, list[int]] = {}
    for word, (start, end) in zip(encoded.word_ids(), encoded["offset_mapping"]):
        if word is None:
            continue
        span = spans.setdefault(word, [start, end])
        span[1] = max(span[1], end)
    return [(start, end) for start, end in (spans[w] for w in sorted(spans)) if end > start]


def group_entities(text: str, spans: list[tuple[int, int]], tags: list[str], scores: list[float]) -> list[dict]:
    """Adjacent words of one entity type as one entity (the module docstring says where one starts)."""
    entities: list[dict] = []
    current: dict | None = None
    previous = "O"
    for (start, end), tag, score in zip(spans, tags, scores):
        match = TAG.match(tag)
        if match is None:  # O (or a tag of no scheme: read as outside)
            current, previous = None, "O"
            continue
        prefix, kind = match.groups()
        ended = previous[:1] in ("E", "S")
        if current is None or current["entity_group"] != kind or prefix in ("B", "S") or ended:
            current = {"entity_group": kind, "scores": [], "start": start, "end": end}
            entities.append(current)
        current["scores"].append(score)
        current["end"] = end
        previous = tag
    return [{"entity_group": e["entity_group"], "score": float(np.mean(e["scores"])), "word": text[e["start"]:e["end"]],
             "start": e["start"], "end": e["end"]} for e in entities]


class EntityTagger:
    """A fine-tuned NER folder (or its export: ONNX Runtime), loaded once: ``tagger(text)`` -> its entities."""

    def __init__(self, model_dir: str | Path, backend: str = "scratch", precision: str | None = None, **settings: Any):
        folder = resolve_model_dir(str(model_dir))
        self.task = NerTask()
        self.task.check_trained_folder(folder, NerDataConfig())  # the trained head, and its tags (id2label)
        if is_export_folder(folder):  # a `bert-tasks export` folder: its model.onnx on ONNX Runtime, in fp32
            self.model, precision = load_export(folder, head="ner"), "no"
        else:
            self.model = load_pretrained(folder, task="ner", num_labels=len(self.task.labels), backend=backend,
                                         trained_head=True).eval()
        self.tokenizer = load_tokenizer(str(folder))
        check_vocab_fits(self.tokenizer, self.model.config, source=folder)
        self.cfg = trained_settings(folder, NerDataConfig, settings)
        note = self.cfg.fit_positions(max_tokens(self.model.config), folder)
        if note:
            log.warning(note)
        self.cfg.validate()
        self.precision = folder_precision(folder, precision)

    def __call__(self, text: str) -> list[dict[str, Any]]:
        if not isinstance(text, str) or not text.strip():
            raise BertTasksError("--text is empty")
        spans = split_words(text, self.tokenizer)
        if not spans:
            return []
        words = [text[start:end] for start, end in spans]
        features = encode([words], self.tokenizer, max_seq_length=self.cfg.max_seq_length,
                          doc_stride=self.cfg.doc_stride)
        self.task.pad_token_id = self.tokenizer.pad_token_id or 0
        rows = [{k: features[k][i] for k in features} for i in range(len(features["input_ids"]))]
        batch = self.task.collate(rows)
        with torch.no_grad(), computing_in(self.precision):
            logits = self.model(**model_inputs(batch, self.model)).logits.float()
        per_window = [logits[i, : len(row["input_ids"])].numpy() for i, row in enumerate(rows)]
        values = word_logits(features, per_window, [len(words)])[0]
        shifted = np.exp(values - values.max(axis=-1, keepdims=True))  # the pipeline's softmax
        probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        best = probabilities.argmax(axis=-1)
        tags = [self.task.labels[i] for i in best.tolist()]
        scores = [float(probabilities[i, b]) for i, b in enumerate(best.tolist())]
        return group_entities(text, spans, tags, scores)
