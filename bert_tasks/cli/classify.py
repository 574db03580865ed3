"""`eval classify` and `predict classify`; `finetune classify` is generated from the registry (training.py).

Their data options are the classify settings' own (:class:`~bert_tasks.tasks.classify.config.ClassifyDataConfig`);
the columns, the problem type and the label delimiter default to what the folder was trained with, the labels are
the folder's (config.json). The runner and the task modules are imported inside the commands: they load torch,
which `--help` must not.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from ..config import ModelSettings, TrainConfig, trained_settings
from ..tasks import CLASSIFY, get_task
from ..tasks.classify.config import ClassifyDataConfig
from .app import eval_app, predict_app
from .options import CALIBRATE_SWITCH, Backend, PRECISION_SWITCH, data_options, eval_switches, with_signature

TrainedModel = Annotated[str, typer.Option("--model", "-m", help="A fine-tuned classify model folder.")]


def eval_classify(**values) -> None:
    """Score a fine-tuned folder on a dev file: eval_results.json, eval_per_class.json, eval_predictions.jsonl.

    Example: bert-tasks eval classify --model runs/mine --validation-file dev.csv [--calibrate]
    """
    from ..checkpoint.load import require_trained_head
    from ..runner.template import evaluate_folder

    model, backend, output_dir, eval_batch_size, precision, calibrate = (
        values.pop(k) for k in ("model", "backend", "output_dir", "eval_batch_size", "mixed_precision", "calibrate"))
    values["do_predict"] = values["do_predict"] or None
    require_trained_head(model, "glue")  # before its recipe.yaml is read as a classify one
    cfg = trained_settings(model, ClassifyDataConfig, values)
    cfg.validate()
    evaluate_folder(get_task("classify"), model, cfg, output_dir=output_dir, backend=backend or ModelSettings.backend,
                    batch_size=eval_batch_size or TrainConfig.eval_batch_size, precision=precision, calibrate=calibrate)


eval_app.command("classify")(with_signature(eval_classify, data_options(ClassifyDataConfig, CLASSIFY.eval_flags),
                                            switches=(*eval_switches(TrainedModel), CALIBRATE_SWITCH)))


@predict_app.command("classify")
def predict_classify(
    model: TrainedModel,
    text: Annotated[str, typer.Option("--text", help="The text (the first one for pairs).")],
    text_pair: Annotated[Optional[str], typer.Option("--text-pair", help="The second text, for pair models.")] = None,
    threshold: Annotated[Optional[float], typer.Option("--threshold", min=0.0, max=1.0, help="Multi-label: the decision threshold (default: the one tuned on dev).")] = None,
    backend: Backend = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    mixed_precision: PRECISION_SWITCH[1] = None,
) -> None:
    """Classify one text (pair): the label and each label's probability; multi-label: the labels chosen; regression: the score.

    Example: bert-tasks predict classify --model runs/mine --text "the battery died after a day"
    """
    from ..tasks.classify.inference import predict_text

    result = predict_text(model, text, text_pair, backend=backend or ModelSettings.backend, precision=mixed_precision,
                          threshold=threshold)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    if "probabilities" not in result:
        print(f"score: {result['score']:.4f}")
        return
    if "labels" in result:
        print(f"{', '.join(result['labels']) or '(no label)'} (threshold {result['threshold']:g})")
    else:
        print(f"{result['label']} ({result['score']:.4f})")
    for label, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:<16} {p:.4f}")
