"""`eval squad` and `predict squad`; `finetune squad` is generated from the registry (training.py).

Their data options are the SQuAD settings' own (:class:`~bert_tasks.tasks.squad.config.SquadDataConfig`).
The runner and the task modules are imported inside the commands: they load torch, which `--help` must not.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ..config import ModelSettings, TrainConfig
from ..errors import BertTasksError
from ..tasks import get_task
from ..tasks.squad.config import SquadDataConfig
from .app import eval_app, predict_app
from .options import setting_option


def _data(name: str, **kwargs):
    return setting_option(SquadDataConfig, name, **kwargs).annotation


TrainedModel = Annotated[str, typer.Option("--model", "-m", help="A fine-tuned SQuAD model folder.")]
Backend = setting_option(ModelSettings, "backend").annotation
EvalBatchSize = setting_option(TrainConfig, "eval_batch_size").annotation
EvalOutput = Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where results go (default: MODEL/eval, beside the training results).")]
TRAINED = "what the model was trained with"


@eval_app.command("squad")
def eval_squad(
    model: TrainedModel,
    validation_file: _data("validation_file") = None,
    dataset: _data("dataset") = None,
    version_2_with_negative: _data("version_2_with_negative") = None,
    null_score_diff_threshold: _data("null_score_diff_threshold", default=TRAINED) = None,
    n_best_size: _data("n_best_size", default=TRAINED) = None,
    max_answer_length: _data("max_answer_length", default=TRAINED) = None,
    max_seq_length: _data("max_seq_length", default=TRAINED) = None,
    doc_stride: _data("doc_stride", default=TRAINED) = None,
    max_eval_samples: _data("max_eval_samples") = None,
    backend: Backend = None,
    output_dir: EvalOutput = None,
    eval_batch_size: EvalBatchSize = None,
) -> None:
    """Score a fine-tuned folder: eval_results.json, predictions.json, nbest_predictions.json (+ null_odds.json for v2).

    Window and search settings default to the folder's recipe.yaml.

    Example: bert-tasks eval squad --model runs/squad --validation-file dev-v1.1.json --output-dir runs/squad-eval --backend hf
    """
    from ..checkpoint.load import require_trained_head
    from ..runner.template import evaluate_folder
    from ..tasks.squad.config import eval_config

    require_trained_head(model, "squad")  # before its recipe.yaml is read as a SQuAD one
    cfg = eval_config(model, validation_file=validation_file, dataset=dataset,
                      version_2_with_negative=version_2_with_negative, null_score_diff_threshold=null_score_diff_threshold,
                      n_best_size=n_best_size, max_answer_length=max_answer_length, max_seq_length=max_seq_length,
                      doc_stride=doc_stride, max_eval_samples=max_eval_samples)
    evaluate_folder(get_task(cfg.task), model, cfg, output_dir=output_dir, backend=backend or "scratch",
                    batch_size=eval_batch_size or TrainConfig.eval_batch_size)


@predict_app.command("squad")
def predict_squad(
    model: TrainedModel,
    question: Annotated[Optional[str], typer.Option("--question", "-q", help="The question.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="The text holding the answer.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", help="JSON Lines, one {id?, question, context} per line.")] = None,
    null_score_diff_threshold: _data("null_score_diff_threshold", default=TRAINED) = None,
    max_seq_length: _data("max_seq_length", default=TRAINED) = None,
    doc_stride: _data("doc_stride", default=TRAINED) = None,
    max_answer_length: _data("max_answer_length", default=TRAINED) = None,
    backend: Backend = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object (with --file: one per line).")] = False,
) -> None:
    """Answer a question about a context: the answer, its score and its character offsets in the context.

    Example: bert-tasks predict squad --model runs/quickstart --question "Where was Ada born?" --context "Ada was born in London."

    Example: bert-tasks predict squad --model runs/quickstart --file questions.jsonl --json
    """
    from ..tasks.squad.inference import QuestionAnswerer, read_question_file

    if file is not None and (question is not None or context is not None):
        raise BertTasksError("give --file, or --question with --context, not both")
    if file is None and (question is None or context is None):
        raise BertTasksError("give --question and --context (or --file with JSON Lines)")
    for flag, value in (("--question", question), ("--context", context)):
        if value is not None and not value.strip():
            raise BertTasksError(f"'{flag[2:]}' is missing, empty or not text", record=flag)
    records = read_question_file(file) if file is not None else [{"question": question, "context": context}]
    answerer = QuestionAnswerer(model, backend=backend or "scratch", max_seq_length=max_seq_length, doc_stride=doc_stride,
                                max_answer_length=max_answer_length, null_score_diff_threshold=null_score_diff_threshold)
    answers = answerer.batch(records, source=file)
    for record, answer in zip(records, answers):
        row = {**({"id": record["id"]} if file is not None else {}), "answer": answer.text, "score": answer.score,
               "start": answer.start, "end": answer.end}
        if as_json:
            print(json.dumps(row, ensure_ascii=False))
            continue
        shown = answer.text if answer.text else "(no answer)"
        prefix = f"{record['id']}\t" if file is not None else ""
        print(f"{prefix}{shown}\tscore {answer.score:.4f}\tcharacters {answer.start}-{answer.end}")
