"""`eval squad` and `predict squad`; `finetune squad` is generated from the registry (training.py).

Their data options are the SQuAD settings' own (:class:`~bert_tasks.tasks.squad.config.SquadDataConfig`).
The runner and the task modules are imported inside the commands: they load torch, which `--help` must not.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ..config import TrainConfig
from ..errors import BertTasksError
from ..tasks import SQUAD, get_task
from ..tasks.squad.config import SquadDataConfig
from .app import eval_app, predict_app
from .options import Backend, PRECISION_SWITCH, data_options, eval_switches, switch, with_signature


TrainedModel = Annotated[str, typer.Option("--model", "-m", help="A fine-tuned SQuAD model folder.")]


def eval_squad(**values) -> None:
    """Score a fine-tuned folder: eval_results.json, predictions.json, nbest_predictions.json (+ null_odds.json for v2).

    Window and search settings default to the folder's recipe.yaml.

    Example: bert-tasks eval squad --model runs/squad --validation-file dev-v1.1.json --output-dir runs/squad-eval --backend hf
    """
    from ..checkpoint.load import require_trained_head
    from ..runner.template import evaluate_folder
    from ..tasks.squad.config import eval_config

    model, backend, output_dir, eval_batch_size, precision = (
        values.pop(k) for k in ("model", "backend", "output_dir", "eval_batch_size", "mixed_precision"))
    require_trained_head(model, "squad")  # before its recipe.yaml is read as a SQuAD one
    cfg = eval_config(model, **values)
    evaluate_folder(get_task(cfg.task), model, cfg, output_dir=output_dir, backend=backend or "scratch",
                    batch_size=eval_batch_size or TrainConfig.eval_batch_size, precision=precision)


eval_app.command("squad")(with_signature(eval_squad, data_options(SquadDataConfig, SQUAD.eval_flags), switches=eval_switches(TrainedModel)))


def predict_squad(**values) -> None:
    """Answer a question about a context: the answer, its score and its character offsets in the context.

    Example: bert-tasks predict squad --model runs/quickstart --question "Where was Ada born?" --context "Ada was born in London."

    Example: bert-tasks predict squad --model runs/quickstart --file questions.jsonl --json
    """
    from ..tasks.squad.inference import QuestionAnswerer, read_question_file

    model, question, context, file, backend, as_json, precision = (
        values.pop(k) for k in ("model", "question", "context", "file", "backend", "as_json", "mixed_precision"))
    if file is not None and (question is not None or context is not None):
        raise BertTasksError("give --file, or --question with --context, not both")
    if file is None and (question is None or context is None):
        raise BertTasksError("give --question and --context (or --file with JSON Lines)")
    for flag, value in (("--question", question), ("--context", context)):
        if value is not None and not value.strip():
            raise BertTasksError(f"'{flag[2:]}' is missing, empty or not text", record=flag)
    records = read_question_file(file) if file is not None else [{"question": question, "context": context}]
    answerer = QuestionAnswerer(model, backend=backend or "scratch", precision=precision, **values)
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


predict_app.command("squad")(with_signature(predict_squad, data_options(SquadDataConfig, SQUAD.predict_flags), switches=(
    switch("model", TrainedModel, ...),
    switch("question", Annotated[Optional[str], typer.Option("--question", "-q", help="The question.")]),
    switch("context", Annotated[Optional[str], typer.Option("--context", "-c", help="The text holding the answer.")]),
    switch("file", Annotated[Optional[str], typer.Option("--file", help="JSON Lines, one {id?, question, context} per line.")]),
    switch("backend", Backend),
    switch("as_json", Annotated[bool, typer.Option("--json", help="Print JSON: one object (with --file: one per line).")], False),
    PRECISION_SWITCH)))
