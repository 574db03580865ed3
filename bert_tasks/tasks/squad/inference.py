"""Extractive question answering from Python: ``QuestionAnswerer``, the engine behind ``predict squad``.

transformers 5 dropped its ``question-answering`` pipeline; this is the replacement, built from
the training code's own pieces rather than a second implementation: ``features.prepare_eval_features``
cuts each (question, context) into overlapping windows, ``train.predict`` runs the model over
them longest-first, and ``postprocess.postprocess_predictions`` does the n-best search across
windows (and, for SQuAD 2.0 models, the null-answer decision).

    from bert_tasks import QuestionAnswerer

    qa = QuestionAnswerer("runs/quickstart")
    answer = qa("Where was Ada born?", "Ada Lovelace was born in London in 1815.")
    answer.text, answer.score, answer.start, answer.end   # 'London', 0.93, 25, 31
    qa.batch([{"question": ..., "context": ...}, ...])      # one Answer per record

``start``/``end`` are character offsets into the context (``context[start:end] == text``);
a null answer (SQuAD 2.0 models, when the null score beats the best span by more than
``null_score_diff_threshold``) is ``text=""`` with ``start == end == 0``.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from ...checkpoint.load import load_pretrained
from ...checkpoint.onnx import OnnxModel, is_export_folder, load_export
from ...checkpoint.locate import resolve_model_dir
from ...checkpoint.tokenizer import check_vocab_fits, load_tokenizer, max_tokens
from ...config import trained_settings
from ...errors import BertTasksError
from ...io import require_input_file
from ...training.precision import computing_in, folder_precision
from ...training.prediction import ColumnRows, predict
from .config import SquadDataConfig, trained_version_2
from .features import prepare_eval_features
from .postprocess import postprocess_predictions
from .task import SquadTask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    #: the answer span, "" for no answer
    text: str
    #: its probability among the n-best candidates of its question (softmax of start + end logits)
    score: float
    #: first character of the answer in the context
    start: int
    #: one past its last character: ``context[start:end] == text``
    end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QuestionAnswerer:
    """Answer questions about a context with a fine-tuned SQuAD model (folder, export folder or loaded model).

    An export folder (``bert-tasks export``) runs its model.onnx on ONNX Runtime.

    Window and search settings left as None come from the folder's recipe.yaml (what the model was
    trained with), else from :class:`SquadDataConfig` (run_qa.py's defaults). ``version_2=None`` reads
    the folder's recipe.yaml (or the mark in its config.json) and falls back to SQuAD 1.1, where every
    question gets a span.
    """

    def __init__(
        self,
        model_dir_or_model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        backend: str = "scratch",
        max_seq_length: int | None = None,
        doc_stride: int | None = None,
        max_query_length: int | None = None,
        n_best_size: int | None = None,
        max_answer_length: int | None = None,
        version_2: bool | None = None,
        null_score_diff_threshold: float | None = None,
        batch_size: int = 32,
        precision: str | None = None,
    ):
        given = {"max_seq_length": max_seq_length, "doc_stride": doc_stride, "max_query_length": max_query_length,
                 "n_best_size": n_best_size, "max_answer_length": max_answer_length,
                 "null_score_diff_threshold": null_score_diff_threshold}
        if isinstance(model_dir_or_model, (str, os.PathLike)):
            folder = resolve_model_dir(str(model_dir_or_model))
            if is_export_folder(folder):  # a `bert-tasks export` folder: its model.onnx on ONNX Runtime, in fp32
                model, precision = load_export(folder, head="squad"), "no"
            else:
                model = load_pretrained(folder, task="squad", backend=backend, trained_head=True)
            tokenizer = tokenizer or load_tokenizer(str(folder))
            version_2 = trained_version_2(folder) if version_2 is None else version_2
            cfg = trained_settings(folder, SquadDataConfig, {**given, "version_2_with_negative": bool(version_2)})
            precision = folder_precision(folder, precision)
        else:
            model = model_dir_or_model
            if tokenizer is None:
                raise BertTasksError("QuestionAnswerer: pass the tokenizer along with an already loaded model")
            folder = "the model"
            cfg = SquadDataConfig(**{k: v for k, v in given.items() if v is not None},
                                  version_2_with_negative=bool(version_2))
            cfg.given = frozenset(k for k, v in given.items() if v is not None)
        check_vocab_fits(tokenizer, model.config)
        if torch.cuda.is_available() and next(model.parameters()).device.type == "cpu" and not isinstance(model, OnnxModel):
            model = model.to("cuda")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.version_2 = bool(version_2)
        self.batch_size = batch_size
        note = cfg.fit_positions(max_tokens(model.config), folder)  # a window fits the model's position table
        if note:
            log.warning(note)
        self.cfg = cfg.validate()
        #: what the model computes in: the folder's training precision by default (fp32 for a loaded model)
        self.precision = precision or "no"
        self.task = SquadTask(version_2=self.version_2)
        if tokenizer.pad_token_id is not None:
            self.task.pad_token_id = tokenizer.pad_token_id

    def __call__(self, question: str, context: str) -> Answer:
        return self.batch([{"question": question, "context": context}])[0]

    def batch(self, records: Iterable[Mapping[str, Any]], *, source: str | None = None) -> list[Answer]:
        """One :class:`Answer` per ``{"question", "context"}`` mapping (an ``id`` key only names it in errors)."""
        records = list(records)
        if not records:
            return []
        questions, contexts = [], []
        for i, record in enumerate(records):
            where = f"record {record.get('id', i) if isinstance(record, Mapping) else i}"
            if not isinstance(record, Mapping):
                raise BertTasksError(f"expected a mapping with 'question' and 'context', got {type(record).__name__}",
                                     file=source, record=where)
            for key, values in (("question", questions), ("context", contexts)):
                value = record.get(key)
                if not isinstance(value, str) or not value.strip():
                    raise BertTasksError(f"'{key}' is missing, empty or not text", file=source, record=where)
                values.append(value)
        # Internal ids: the caller's may repeat or be absent.
        examples = {"id": [str(i) for i in range(len(records))], "question": questions, "context": contexts}
        features = prepare_eval_features(examples, self.tokenizer, self.cfg)
        model_rows = ColumnRows({k: features[k] for k in features if k not in ("offset_mapping", "example_id")})
        with computing_in(self.precision, next(self.model.parameters()).device):
            logits = predict(self.model, self.task, model_rows, batch_size=self.batch_size)
        found = postprocess_predictions(
            examples, features, logits["start_logits"], logits["end_logits"], n_best_size=self.cfg.n_best_size,
            max_answer_length=self.cfg.max_answer_length, version_2_with_negative=self.version_2,
            null_score_diff_threshold=self.cfg.null_score_diff_threshold,
        )
        return [self._answer(found, example_id) for example_id in examples["id"]]

    @staticmethod
    def _answer(found: Any, example_id: str) -> Answer:
        span = found.answer_offsets.get(example_id)
        nbest = found.nbest[example_id]
        if span is None:  # the null answer won (v2.0), or no legal span exists at all
            null = next((e for e in nbest if e["text"] == "" and e["start"] == -1), None)
            return Answer("", float(null["probability"]) if null else 0.0, 0, 0)
        start, end = span
        entry = next(e for e in nbest if e["start"] == start and len(e["text"]) == end - start)
        return Answer(entry["text"], float(entry["probability"]), int(start), int(end))


def read_question_file(path: str | os.PathLike) -> list[dict[str, Any]]:
    """JSON Lines of ``{"id"?, "question", "context"}``; a bad line is one error naming file and line."""
    path = require_input_file(path, "question file")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BertTasksError(f"cannot read ({exc.strerror})", file=path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise BertTasksError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); re-save the file as UTF-8",
                             file=path, record=f"line {line}") from None
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BertTasksError(f"malformed JSON: {exc.msg} (column {exc.colno})", file=path, record=f"line {number}") from None
        if not isinstance(record, dict):
            raise BertTasksError(f"expected one JSON object per line, found {type(record).__name__}", file=path,
                                 record=f"line {number}")
        for key in ("question", "context"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise BertTasksError(f"'{key}' is missing, empty or not text", file=path,
                                     record=f"line {number}" + (f" (id {record['id']})" if "id" in record else ""))
        records.append({"id": record.get("id", str(number)), "question": record["question"], "context": record["context"]})
    if not records:
        raise BertTasksError("holds no questions", file=path)
    return records
