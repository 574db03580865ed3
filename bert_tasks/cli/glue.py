"""`finetune glue`, `eval glue` and `predict glue`: parse, resolve the recipe, call tasks/glue/run.py."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from . import options as o
from .app import eval_app, finetune_app, predict_app

Task = Annotated[Optional[str], typer.Option("--task", "-t", help="cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli, or all.")]
DataDir = Annotated[Optional[str], typer.Option("--data-dir", help="GLUE root (holding CoLA/, SST-2/, ...) or one task's folder.")]
Dataset = Annotated[Optional[str], typer.Option("--dataset", help="'glue': the Hub dataset (needs a network or a cache).")]
TrainFile = Annotated[Optional[str], typer.Option("--train-file", help="Your own CSV / TSV / JSON Lines training file.")]
ValidationFile = Annotated[Optional[str], typer.Option("--validation-file", help="Your own dev file.")]
TestFile = Annotated[Optional[str], typer.Option("--test-file", help="Your own unlabeled test file (for --do-predict).")]
MaxSeqLength = Annotated[Optional[int], typer.Option("--max-seq-length", help="Truncate inputs to this many tokens.")]
PadToMax = Annotated[Optional[bool], typer.Option("--pad-to-max-length/--dynamic-padding", help="Pad every input to --max-seq-length (slower) instead of per batch.")]
MaxTrain = Annotated[Optional[int], typer.Option("--max-train-samples", help="Use only the first N training examples.")]
MaxEval = Annotated[Optional[int], typer.Option("--max-eval-samples", help="Use only the first N dev examples.")]
DoPredict = Annotated[Optional[bool], typer.Option("--do-predict/--no-predict", help="Also write GLUE leaderboard files from the test sets.")]

#: recipe key for each GLUE flag
DATA_KEYS = {
    "task": "data.task",
    "data_dir": "data.data_dir",
    "dataset": "data.dataset",
    "train_file": "data.train_file",
    "validation_file": "data.validation_file",
    "test_file": "data.test_file",
    "max_seq_length": "data.max_seq_length",
    "pad_to_max_length": "data.pad_to_max_length",
    "max_train_samples": "data.max_train_samples",
    "max_eval_samples": "data.max_eval_samples",
    "do_predict": "data.do_predict",
}
SOURCES = {"data_dir": ("data_dir",), "dataset": ("dataset",), "files": ("train_file", "validation_file", "test_file")}


def resolve_glue_recipe(recipe: str | None, sets: list[str] | None, values: dict):
    """Layer run_glue's defaults < recipe < --set < flags; the recipe's top-level task names its data task."""
    from ..config import find_recipe, read_yaml, resolve_recipe
    from ..errors import BertTasksError
    from ..tasks.glue.run import RUN_GLUE_DEFAULTS
    from ..tasks.glue.spec import TASK_NAMES

    defaults = dict(RUN_GLUE_DEFAULTS)
    path = find_recipe(recipe) if recipe else None
    content = read_yaml(path) if path else {}
    file_task = content.get("task")
    data_task = content.get("data", {}).get("task") if isinstance(content.get("data"), dict) else None
    if file_task in TASK_NAMES and data_task not in (None, file_task) and not values.get("task"):
        raise BertTasksError(f"the recipe's task is {file_task} but its data.task is {data_task}; make them agree "
                             "(or pass --task)", file=path)
    if file_task in TASK_NAMES:
        defaults["data.task"] = file_task
    flags = o.train_flags(values, DATA_KEYS)
    if values.get("task") in TASK_NAMES:
        flags["task"] = values["task"]
    return resolve_recipe(recipe, task="glue", overrides=[*(sets or []), *o.source_resets(values, SOURCES)],
                          flags=flags, defaults=defaults)


@finetune_app.command("glue")
@o.training_command
def finetune_glue(
    task: Task = None,
    data_dir: DataDir = None,
    dataset: Dataset = None,
    train_file: TrainFile = None,
    validation_file: ValidationFile = None,
    test_file: TestFile = None,
    max_seq_length: MaxSeqLength = None,
    pad_to_max_length: PadToMax = None,
    max_train_samples: MaxTrain = None,
    max_eval_samples: MaxEval = None,
    do_predict: DoPredict = None,
    *,
    options: dict,
) -> None:
    """Fine-tune on a GLUE task (or all of them) with run_glue.py's defaults: lr 2e-5, batch 32, 3 epochs, 128 tokens.

    Example: bert-tasks finetune glue --task sst2 --model minilm --data-dir glue_data/SST-2 --output-dir runs/sst2
    """
    values = {**{k: v for k, v in locals().items() if k != "options"}, **options}
    resolved = resolve_glue_recipe(options["recipe"], options["sets"], values)
    from ..tasks.glue.run import finetune_glue as run

    run(resolved, **o.run_switches(options))


@eval_app.command("glue")
def eval_glue(
    model: Annotated[str, typer.Option("--model", "-m", help="A fine-tuned model folder (with --task all: the run's root).")],
    task: Task = None,
    data_dir: DataDir = None,
    dataset: Dataset = None,
    validation_file: ValidationFile = None,
    test_file: TestFile = None,
    max_seq_length: MaxSeqLength = None,
    max_eval_samples: MaxEval = None,
    do_predict: DoPredict = None,
    backend: o.Backend = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where results go (default: the model folder).")] = None,
    eval_batch_size: o.EvalBatchSize = None,
) -> None:
    """Score a fine-tuned folder on the dev set(s): eval_results.json, eval_predictions.jsonl; --task all prints the GLUE table.

    Example: bert-tasks eval glue --model runs/sst2 --task sst2 --data-dir glue_data
    """
    from ..errors import BertTasksError
    from ..tasks.glue.config import GlueDataConfig
    from ..tasks.glue.run import evaluate_glue, trained_max_seq_length, trained_task

    task = task or trained_task(model)
    if task is None:
        raise BertTasksError("which task? pass --task (the model folder has no recipe.yaml naming it)", file=model)
    cfg = GlueDataConfig(
        task=task, data_dir=data_dir, dataset=dataset, validation_file=validation_file, test_file=test_file,
        max_seq_length=max_seq_length or trained_max_seq_length(model) or 128,
        max_eval_samples=max_eval_samples, do_predict=bool(do_predict),
    )
    evaluate_glue(model, cfg, output_dir=output_dir, backend=backend or "scratch", batch_size=eval_batch_size or 64)


@predict_app.command("glue")
def predict_glue(
    model: Annotated[str, typer.Option("--model", "-m", help="A fine-tuned model folder.")],
    text: Annotated[str, typer.Option("--text", help="The sentence (the first one for pair tasks).")],
    text_pair: Annotated[Optional[str], typer.Option("--text-pair", help="The second sentence, for pair tasks.")] = None,
    backend: o.Backend = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Classify one sentence (pair): the label and each label's probability (STS-B: the score).

    Example: bert-tasks predict glue --model runs/sst2 --text "a gripping, funny film"
    """
    from ..tasks.glue.run import predict_glue_text

    result = predict_glue_text(model, text, text_pair, backend=backend or "scratch")
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    if "probabilities" not in result:
        print(f"{result['label']}: {result['score']:.4f}")
        return
    print(f"{result['label']} ({result['score']:.4f})")
    for label, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:<16} {p:.4f}")
