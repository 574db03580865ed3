"""`finetune squad`, `eval squad` and `predict squad`: parse, resolve the recipe, call tasks/squad/."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from . import options as o
from .app import eval_app, finetune_app, predict_app

Dataset = Annotated[Optional[str], typer.Option("--dataset", help="'squad' or 'squad_v2' from the Hub (needs a network or a cache).")]
TrainFile = Annotated[Optional[str], typer.Option("--train-file", help="Official SQuAD JSON, JSON Lines / Parquet / CSV (Hub columns), or a save_to_disk folder.")]
ValidationFile = Annotated[Optional[str], typer.Option("--validation-file", help="Dev data, in any of the --train-file formats.")]
Version2 = Annotated[Optional[bool], typer.Option("--version-2-with-negative", help="SQuAD 2.0: some questions have no answer.")]
SkipBad = Annotated[Optional[bool], typer.Option("--skip-bad-examples", help="Drop examples whose answer does not match the context, instead of stopping.")]
NullThreshold = Annotated[Optional[float], typer.Option("--null-score-diff-threshold", help="SQuAD 2.0: answer '' when null score - best span score exceeds this.")]
NBest = Annotated[Optional[int], typer.Option("--n-best-size", help="Start/end candidates per window, and n-best list length.")]
MaxAnswer = Annotated[Optional[int], typer.Option("--max-answer-length", help="Longest answer, in tokens.")]
MaxSeqLength = Annotated[Optional[int], typer.Option("--max-seq-length", help="Tokens per window (question + context).")]
DocStride = Annotated[Optional[int], typer.Option("--doc-stride", help="Tokens shared by consecutive windows of a long context.")]
MaxQuery = Annotated[Optional[int], typer.Option("--max-query-length", help="Questions are cut to this many tokens.")]
MaxTrain = Annotated[Optional[int], typer.Option("--max-train-samples", help="Use only the first N training questions.")]
MaxEval = Annotated[Optional[int], typer.Option("--max-eval-samples", help="Use only the first N dev questions.")]
TrainedModel = Annotated[str, typer.Option("--model", "-m", help="A fine-tuned SQuAD model folder.")]

#: recipe key for each SQuAD flag
DATA_KEYS = {
    "dataset": "data.dataset",
    "train_file": "data.train_file",
    "validation_file": "data.validation_file",
    "version_2_with_negative": "data.version_2_with_negative",
    "skip_bad_examples": "data.skip_bad_examples",
    "null_score_diff_threshold": "data.null_score_diff_threshold",
    "n_best_size": "data.n_best_size",
    "max_answer_length": "data.max_answer_length",
    "max_seq_length": "data.max_seq_length",
    "doc_stride": "data.doc_stride",
    "max_query_length": "data.max_query_length",
    "max_train_samples": "data.max_train_samples",
    "max_eval_samples": "data.max_eval_samples",
}
SOURCES = {"dataset": ("dataset",), "files": ("train_file", "validation_file")}


def resolve_squad_recipe(recipe: str | None, sets: list[str] | None, values: dict):
    """Layer run_qa.py's defaults < recipe < --set < flags; v2.0 follows from the flag, the dataset or the recipe."""
    from ..config import find_recipe, read_yaml, resolve_recipe
    from ..tasks.squad.run import RUN_QA_DEFAULTS

    defaults = dict(RUN_QA_DEFAULTS)
    if recipe and read_yaml(find_recipe(recipe)).get("task") == "squad_v2":
        defaults["data.version_2_with_negative"] = True
    flags = o.train_flags(values, DATA_KEYS)
    if values.get("version_2_with_negative") or values.get("dataset") == "squad_v2":
        flags.update({"data.version_2_with_negative": True, "task": "squad_v2"})
    return resolve_recipe(recipe, task="squad", overrides=[*(sets or []), *o.source_resets(values, SOURCES, also=("data.synthetic=false",))],
                          flags=flags, defaults=defaults)


@finetune_app.command("squad")
@o.training_command
def finetune_squad(
    dataset: Dataset = None,
    train_file: TrainFile = None,
    validation_file: ValidationFile = None,
    version_2_with_negative: Version2 = None,
    skip_bad_examples: SkipBad = None,
    null_score_diff_threshold: NullThreshold = None,
    n_best_size: NBest = None,
    max_answer_length: MaxAnswer = None,
    max_seq_length: MaxSeqLength = None,
    doc_stride: DocStride = None,
    max_query_length: MaxQuery = None,
    max_train_samples: MaxTrain = None,
    max_eval_samples: MaxEval = None,
    *,
    options: dict,
) -> None:
    """Fine-tune extractive QA with run_qa.py's defaults: squad from the Hub, 2 epochs, lr 3e-5, batch 12, 384 tokens, stride 128.

    Offline, start with the bundled model and the built-in sample.

    Example: bert-tasks finetune squad --recipe quickstart --output-dir runs/quickstart --overwrite-output-dir

    Example: bert-tasks finetune squad --model minilm --train-file train-v1.1.json --validation-file dev-v1.1.json --output-dir runs/squad
    """
    values = {**{k: v for k, v in locals().items() if k != "options"}, **options}
    resolved = resolve_squad_recipe(options["recipe"], options["sets"], values)
    from ..tasks.squad.run import finetune_squad as run

    run(resolved, **o.run_switches(options))


@eval_app.command("squad")
def eval_squad(
    model: TrainedModel,
    validation_file: ValidationFile = None,
    dataset: Dataset = None,
    version_2_with_negative: Version2 = None,
    null_score_diff_threshold: NullThreshold = None,
    n_best_size: NBest = None,
    max_answer_length: MaxAnswer = None,
    max_seq_length: MaxSeqLength = None,
    doc_stride: DocStride = None,
    max_eval_samples: MaxEval = None,
    backend: o.Backend = None,
    output_dir: Annotated[Optional[str], typer.Option("--output-dir", "-o", help="Where results go (default: the model folder).")] = None,
    eval_batch_size: o.EvalBatchSize = None,
) -> None:
    """Score a fine-tuned folder: eval_results.json, predictions.json, nbest_predictions.json (+ null_odds.json for v2).

    Window and search settings default to the folder's recipe.yaml.

    Example: bert-tasks eval squad --model runs/squad --validation-file dev-v1.1.json --output-dir runs/squad-eval --backend hf
    """
    from ..checkpoint import require_trained_head
    from ..tasks.squad.run import eval_config, evaluate_squad_folder

    require_trained_head(model, "squad")  # before its recipe.yaml is read as a SQuAD one
    cfg = eval_config(model, validation_file=validation_file, dataset=dataset,
                      version_2_with_negative=version_2_with_negative, null_score_diff_threshold=null_score_diff_threshold,
                      n_best_size=n_best_size, max_answer_length=max_answer_length, max_seq_length=max_seq_length,
                      doc_stride=doc_stride, max_eval_samples=max_eval_samples)
    evaluate_squad_folder(model, cfg, output_dir=output_dir, backend=backend or "scratch", batch_size=eval_batch_size or 64)


@predict_app.command("squad")
def predict_squad(
    model: TrainedModel,
    question: Annotated[Optional[str], typer.Option("--question", "-q", help="The question.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="The text holding the answer.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", help="JSON Lines, one {id?, question, context} per line.")] = None,
    null_score_diff_threshold: NullThreshold = None,
    max_seq_length: MaxSeqLength = None,
    doc_stride: DocStride = None,
    max_answer_length: MaxAnswer = None,
    backend: o.Backend = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: one object (with --file: one per line).")] = False,
) -> None:
    """Answer a question about a context: the answer, its score and its character offsets in the context.

    Example: bert-tasks predict squad --model runs/quickstart --question "Where was Ada born?" --context "Ada was born in London."

    Example: bert-tasks predict squad --model runs/quickstart --file questions.jsonl --json
    """
    from ..errors import BertTasksError
    from ..tasks.squad.inference import QuestionAnswerer, read_question_file
    from ..tasks.squad.run import trained_settings

    if file is not None and (question is not None or context is not None):
        raise BertTasksError("give --file, or --question with --context, not both")
    if file is None and (question is None or context is None):
        raise BertTasksError("give --question and --context (or --file with JSON Lines)")
    records = read_question_file(file) if file is not None else [{"question": question, "context": context}]
    trained = trained_settings(model)
    answerer = QuestionAnswerer(
        model, backend=backend or "scratch",
        max_seq_length=max_seq_length or trained.get("max_seq_length") or 384,
        doc_stride=doc_stride or trained.get("doc_stride") or 128,
        max_query_length=trained.get("max_query_length") or 64,
        max_answer_length=max_answer_length or trained.get("max_answer_length") or 30,
        null_score_diff_threshold=(null_score_diff_threshold if null_score_diff_threshold is not None
                                   else trained.get("null_score_diff_threshold") or 0.0),
    )
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
