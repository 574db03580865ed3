"""`eval glue` and `predict glue`; `finetune glue` is generated from the registry (training.py).

Their data options are the GLUE settings' own (:class:`~bert_tasks.tasks.glue.config.GlueDataConfig`).
The runner and the task modules are imported inside the commands: they load torch, which `--help` must not.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import EVAL_DIR, ModelSettings, TrainConfig, trained_settings
from ..errors import BertTasksError
from ..io import write_json
from ..tasks import GLUE, get_task
from ..tasks.glue.config import ALL_TASKS, GlueDataConfig
from .app import eval_app, predict_app
from .options import CALIBRATE_SWITCH, Backend, PRECISION_SWITCH, data_options, eval_switches, with_signature


EVAL_SWITCHES = (
    *eval_switches(Annotated[str, typer.Option("--model", "-m", help="A fine-tuned model folder (with --task all: the run's root).")]),
    CALIBRATE_SWITCH,
)


def eval_glue(**values) -> None:
    """Score a fine-tuned folder on the dev set(s): eval_results.json, eval_predictions.jsonl; --task all prints the GLUE table.

    Example: bert-tasks eval glue --model runs/sst2 --task sst2 --data-dir glue_data
    """
    model, backend, output_dir, eval_batch_size, precision, calibrate = (
        values.pop(k) for k in ("model", "backend", "output_dir", "eval_batch_size", "mixed_precision", "calibrate"))
    values["do_predict"] = values["do_predict"] or None
    cfg = trained_settings(model, GlueDataConfig, values)
    first_seed = next(Path(model).glob("seed-*"), None)
    if cfg.task is None and first_seed is not None:  # a --seeds run's root: its seeds' recipe names the task
        cfg.task = trained_settings(first_seed, GlueDataConfig).task
    if cfg.task is None:
        raise BertTasksError("which task? pass --task (the model folder has no recipe.yaml naming it)", file=model)
    cfg.validate()
    if calibrate and cfg.task == ALL_TASKS:
        raise BertTasksError("--calibrate fits a temperature to one classification task's probabilities: pass --task")
    if calibrate:  # before any folder is read; the task module loads torch, which --help must not
        from ..tasks.calibrate import check_calibratable

        check_calibratable(get_task(cfg.task).problem_type, cfg.task)
    batch_size, backend = eval_batch_size or TrainConfig.eval_batch_size, backend or ModelSettings.backend
    root = Path(model)
    out = Path(output_dir) if output_dir else root / EVAL_DIR
    seed_dirs = sorted((p for p in root.glob("seed-*") if p.is_dir() and p.name[5:].isdigit()), key=lambda p: int(p.name[5:]))
    if not seed_dirs:
        _evaluate_run(root, cfg, out, backend=backend, batch_size=batch_size, precision=precision, calibrate=calibrate)
        return
    # a --seeds run: every seed's folder, then the median over seeds (per task, and the GLUE average of medians)
    from ..runner.outputs import track_output_dir
    from ..runner.statistics import print_table, seed_summary
    from ..runner.sweeps import SEEDS_SUMMARY
    from ..tasks.glue.run import report

    track_output_dir(out)
    per_seed = {int(d.name[5:]): _evaluate_run(d, cfg, out / d.name, backend=backend, batch_size=batch_size,
                                            precision=precision, calibrate=calibrate)
                for d in seed_dirs}
    summary = seed_summary(per_seed, {}, out)
    write_json(out / f"eval_{SEEDS_SUMMARY}", summary)
    print_table(f"{cfg.task} over seeds {', '.join(str(s) for s in per_seed)} ({root})", summary)
    if cfg.task == ALL_TASKS:
        medians: dict[str, dict[str, float]] = {}
        for name, stats in summary["metrics"].items():
            task, metric = name.split("/", 1)
            medians.setdefault(task, {})[metric] = stats["median"]
        report(medians, out)  # the GLUE table and glue_results.json: the average of the per-task medians


eval_app.command("glue")(with_signature(eval_glue, data_options(GlueDataConfig, GLUE.eval_flags), switches=EVAL_SWITCHES))


def _evaluate_run(root: Path, cfg: GlueDataConfig, out: Path, *, backend: str, batch_size: int,
                  precision: str | None, calibrate: bool = False) -> dict:
    """Score one run folder: one task's, or a --task all run's root (every task folder, then the GLUE table)."""
    from ..runner.outputs import track_output_dir
    from ..runner.template import evaluate_folder
    from ..tasks.glue.run import expand_configs, report
    from ..tasks.glue.task import SUBMISSION_DIR

    if cfg.task != ALL_TASKS:
        task = get_task(cfg.task)
        return evaluate_folder(task, root, cfg, output_dir=out, backend=backend, batch_size=batch_size,
                               precision=precision, calibrate=calibrate)
    configs = [c for c in expand_configs(cfg) if (root / c.task / "config.json").is_file()]
    if not configs:
        raise BertTasksError("no fine-tuned task folders (e.g. sst2/, mnli/) in the model folder", file=root)
    track_output_dir(out)
    results = {}
    for sub in configs:  # every task's leaderboard file in one folder, ready to zip
        sub = dataclasses.replace(sub, submission_dir=str(out / SUBMISSION_DIR))
        results[sub.task] = evaluate_folder(get_task(sub.task), root / sub.task, sub, output_dir=out / sub.task,
                                            backend=backend, batch_size=batch_size, precision=precision)
    report(results, out)
    return results


@predict_app.command("glue")
def predict_glue(
    model: Annotated[str, typer.Option("--model", "-m", help="A fine-tuned model folder.")],
    text: Annotated[str, typer.Option("--text", help="The sentence (the first one for pair tasks).")],
    text_pair: Annotated[Optional[str], typer.Option("--text-pair", help="The second sentence, for pair tasks.")] = None,
    backend: Backend = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    mixed_precision: PRECISION_SWITCH[1] = None,
) -> None:
    """Classify one sentence (pair): the label and each label's probability (STS-B: the score).

    Example: bert-tasks predict glue --model runs/sst2 --text "a gripping, funny film"
    """
    from ..tasks.glue.inference import predict_text

    result = predict_text(model, text, text_pair, backend=backend or ModelSettings.backend, precision=mixed_precision)
    if as_json:
        print(json.dumps(result, ensure_ascii=False))
        return
    if "probabilities" not in result:
        print(f"{result['label']}: {result['score']:.4f}")
        return
    print(f"{result['label']} ({result['score']:.4f})")
    for label, p in sorted(result["probabilities"].items(), key=lambda kv: -kv[1]):
        print(f"  {label:<16} {p:.4f}")
