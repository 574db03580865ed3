"""``bert-tasks export``: a trained folder -> an ONNX folder that checked itself, written whole or not at all.

The folder it writes holds ``model.onnx`` (and ``model.int8.onnx``), config.json, the tokenizer, the run's
recipe.yaml and eval_results.json (``predict`` reads them as from the trained folder) and ``export_report.json``:
the parity figure, the metrics, the int8 agreement, file sizes, the versions and the opset. It is built under a
temporary name and renamed into place at the end (:func:`bert_tasks.io.atomic_directory`), so a failed check leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import torch

from ..checkpoint.files import read_config
from ..checkpoint.load import load_pretrained
from ..checkpoint.locate import resolve_model_dir
from ..checkpoint.onnx import EXPORT_FILE, INT8_FILE, REPORT_FILE, OnnxModel, is_export_folder, require_export_extra
from ..checkpoint.tokenizer import check_vocab_fits, load_tokenizer, max_tokens
from ..config import trained_recipe, trained_settings
from ..errors import BertTasksError
from ..io import atomic_directory, write_json
from ..model.heads import HEADS, Head
from ..tasks import family_of, get_task
from ..version import __version__
from .check import (FP32_TOLERANCE, agreement, folder_texts, main_metric, max_difference, points, probe_batches,
                    run_probes, score_on_dev)
from .graph import DEFAULT_OPSET, INT8_RECIPE, export_onnx, quantize_int8

QUANTIZATIONS = ("int8",)
#: run files an export keeps beside the graph, for predict (recipe.yaml: the task; eval_results.json: a threshold)
KEPT = ("recipe.yaml", "eval_results.json")


def trained_head(folder: Path) -> Head:
    """The head a trained folder holds, by its recorded class; a bare encoder (or anything else) is one line."""
    held = read_config(folder).get("architectures") or []
    for head in HEADS.values():
        if not head.bare and any(name.endswith(head.architecture.removeprefix("Bert")) for name in held):
            return head
    if any(name.endswith("PoolingForSequenceClassification") for name in held):  # our pooled classifiers
        return HEADS["glue"]
    shown = ", ".join(held) or "a model without a recorded architecture"
    raise BertTasksError(f"this folder holds {shown}, with no trained head to export; fine-tune one first "
                         "(bert-tasks finetune ...)", file=folder)


def check_request(folder: Path, out: Path, *, quantize: str | None, opset: int, max_drop: float,
                  overwrite: bool) -> None:
    """Every refusal that needs no model: before anything is loaded or written."""
    if max_drop < 0:
        raise BertTasksError(f"--max-drop must be 0 or more points, got {max_drop:g}", record="--max-drop")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise BertTasksError(f"--quantize {quantize}: choose {', '.join(QUANTIZATIONS)}", record="--quantize")
    if opset < 7:
        raise BertTasksError(f"--opset {opset}: ONNX opsets start at 7 for this exporter", record="--opset")
    if is_export_folder(folder):
        raise BertTasksError("this is already an export folder (it holds model.onnx); export the trained folder",
                             file=folder)
    if out.resolve() == folder.resolve():
        raise BertTasksError("the output folder is the model folder; give another --output-dir", file=out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise BertTasksError("output folder is not empty; pass --overwrite-output-dir to replace it", file=out)


def dev_evaluator(folder: Path, head: Head, validation_file: str, tokenizer: Any, model: Any, batch_size: int):
    """(task, evaluator) scoring ``validation_file`` as ``eval`` does, with the folder's trained settings."""
    recipe = trained_recipe(folder)
    name = recipe.get("task") or recipe["data"].get("task")
    if not name:
        raise BertTasksError("no recipe.yaml naming the task it was trained on, so --validation-file cannot be "
                             "read; export without it (the probe sentences still check the graph)", file=folder)
    family, task = family_of(str(name), file=folder / "recipe.yaml"), get_task(str(name), file=folder / "recipe.yaml")
    if head.outputs == "masked-lm":  # its evaluator masks at random and asks for the masked positions only
        raise BertTasksError("--validation-file scores sentence, token and span heads; a masked-LM export is checked "
                             "on the probe batches (drop --validation-file)", record="--validation-file")
    if task.head != head.name or "validation_file" not in family.config_class.__dataclass_fields__:
        raise BertTasksError(f"--validation-file is for sentence, token and span heads; this folder's task "
                             f"{name} takes none", record="--validation-file")
    cfg = trained_settings(folder, family.config_class, {"validation_file": validation_file})
    cfg.validate()
    task.check_trained_folder(folder, cfg)
    data = task.read_eval_data(cfg)
    if cfg.fit_positions(max_tokens(model.config), folder):
        cfg.validate()
    return task, task.evaluator(data, tokenizer, cfg, batch_size)


@contextlib.contextmanager
def removed_on_error(made: Path | None) -> Iterator[None]:
    """On an error, remove ``made``: the first folder above the output that did not exist (it is empty by then,
    the export's own temporary folder removed), so a failed export leaves the disk as it found it."""
    try:
        yield
    except BaseException:
        if made is not None:
            for folder in sorted((p for p in made.rglob("*") if p.is_dir()), reverse=True) + [made]:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # rmdir, never rmtree: a folder someone wrote into meanwhile stays
        raise


def export_folder(model_dir: str | os.PathLike, output_dir: str | os.PathLike, *, quantize: str | None = None,
                  opset: int = DEFAULT_OPSET, max_drop: float = 1.0, validation_file: str | None = None,
                  overwrite: bool = False, batch_size: int = 32) -> dict[str, Any]:
    """Export ``model_dir``'s trained head to ONNX in ``output_dir`` and check it; returns the report.

    Long because it is the one place the steps meet, in the order the files are written: refuse what needs no
    model; load; trace; ONNX Runtime against PyTorch on the probes (and the dev data); quantize and compare;
    copy the folder's files; the report; rename into place.
    """
    onnx, ort = require_export_extra()
    folder, out = resolve_model_dir(str(model_dir)), Path(output_dir)
    check_request(folder, out, quantize=quantize, opset=opset, max_drop=max_drop, overwrite=overwrite)
    head = trained_head(folder)
    labels = len(read_config(folder).get("id2label") or {}) or None if head.labels else None
    model = load_pretrained(folder, task=head.name, num_labels=labels, trained_head=True).eval()
    tokenizer = load_tokenizer(str(folder))
    check_vocab_fits(tokenizer, model.config, source=folder)
    task = evaluator = None
    if validation_file is not None:
        task, evaluator = dev_evaluator(folder, head, validation_file, tokenizer, model, batch_size)
    longest = min(max_tokens(model.config) or 512, 512)
    report: dict[str, Any] = {"head": head.name, "outputs": head.outputs, "opset": opset, "source": str(folder),
                              "precision": "fp32",  # PyTorch's side of every comparison, and the ONNX graph's
                              "versions": {"bert_tasks": __version__, "torch": torch.__version__,
                                           "onnx": onnx.__version__, "onnxruntime": ort.__version__}}
    made = next((p for p in reversed(out.absolute().parents) if not p.exists()), None)  # folders made for it
    with removed_on_error(made), atomic_directory(out) as tmp:
        names = export_onnx(model, head, tmp / EXPORT_FILE, opset)
        models = {"pytorch": model, "onnx_fp32": OnnxModel(tmp / EXPORT_FILE, head, model.config)}
        if quantize:
            quantize_int8(tmp / EXPORT_FILE, tmp / INT8_FILE)
            models["onnx_int8"] = OnnxModel(tmp / INT8_FILE, head, model.config)
        own = folder_texts(folder)
        batches = probe_batches(tokenizer, longest, own)
        probes = {key: run_probes(m, batches, names) for key, m in models.items()}
        report.update(probe_batches=len(batches), probe_texts_from_folder=len(own))
        parity = {"probes": max_difference(probes["pytorch"], probes["onnx_fp32"])}
        if evaluator is not None:
            metrics, recorded = score_on_dev(evaluator, task, models, names)
            parity["dev"] = max_difference(recorded["pytorch"], recorded["onnx_fp32"])
            report["metric"] = task.main_metric_name
            report["metrics"] = {key: main_metric(task, m) for key, m in metrics.items()}
        report["max_abs_diff_fp32"] = max(parity.values())
        report["parity"] = parity
        if report["max_abs_diff_fp32"] > FP32_TOLERANCE:
            raise BertTasksError(f"ONNX Runtime fp32 differs from PyTorch by {report['max_abs_diff_fp32']:.2e} "
                                 f"(more than {FP32_TOLERANCE:g}); the export is not written", file=folder)
        if quantize:
            sources = [probes] + ([recorded] if evaluator is not None else [])
            report["int8"] = {
                "recipe": INT8_RECIPE,
                "max_abs_diff": max(max_difference(s["onnx_fp32"], s["onnx_int8"]) for s in sources),
                "agreement_with_fp32": agreement(probes["onnx_fp32"], probes["onnx_int8"], head),
            }
            if evaluator is not None:
                report["int8"]["dev_agreement_with_fp32"] = agreement(recorded["onnx_fp32"], recorded["onnx_int8"], head)
                fp32, int8 = (points(report["metrics"][k], head) for k in ("onnx_fp32", "onnx_int8"))
                if fp32 is not None and int8 is not None:
                    drop = fp32 - int8
                    report["int8"].update(drop_points=drop, max_drop_points=max_drop)
                    if drop > max_drop:
                        raise BertTasksError(f"int8 loses {drop:.2f} points of {task.main_metric_name} on the dev "
                                             f"data ({fp32:.2f} -> {int8:.2f}), more than --max-drop {max_drop:g}; "
                                             "nothing is written", file=validation_file)
        tokenizer.save_pretrained(str(tmp))
        shutil.copy2(folder / "config.json", tmp / "config.json")
        for name in KEPT:
            if (folder / name).is_file():
                shutil.copy2(folder / name, tmp / name)
        report["files"] = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.suffix == ".onnx"}
        write_json(tmp / REPORT_FILE, report)
    return report
