"""`bert-tasks export`: a trained folder -> ONNX (and int8), checked against PyTorch before it is written.

The export machinery (torch's exporter, onnx, onnxruntime) is imported inside the command: `--help` loads none.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from .app import app


@app.command("export")
def export(
    model: Annotated[str, typer.Argument(help="A fine-tuned model folder (any head: glue, classify, squad, ner, mlm).")],
    output_dir: Annotated[str, typer.Option("--output-dir", "-o", help="Where the export goes (model.onnx, tokenizer, config.json, export_report.json).")],
    quantize: Annotated[Optional[str], typer.Option("--quantize", help="Also write model.int8.onnx (dynamic int8 quantization): int8.")] = None,
    opset: Annotated[int, typer.Option("--opset", help="The ONNX opset.")] = 17,
    max_drop: Annotated[float, typer.Option("--max-drop", help="With --quantize and --validation-file: fail if int8 loses more points of the main metric than this.")] = 1.0,
    validation_file: Annotated[Optional[str], typer.Option("--validation-file", help="A labeled dev file to check on (as eval takes it); default: probe sentences only.")] = None,
    overwrite_output_dir: Annotated[bool, typer.Option("--overwrite-output-dir", help="Replace a non-empty output folder.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Export a trained model to ONNX with dynamic batch and sequence axes; ONNX Runtime must match PyTorch (1e-4).

    Example: bert-tasks export runs/sst2 --output-dir runs/sst2-onnx --quantize int8
    """
    from ..export import export_folder

    report = export_folder(model, output_dir, quantize=quantize, opset=opset, max_drop=max_drop,
                           validation_file=validation_file, overwrite=overwrite_output_dir)
    if as_json:
        print(json.dumps(report, ensure_ascii=False))
        return
    sizes = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in report["files"].items())
    line = f"exported {report['head']} to {output_dir} (opset {report['opset']}; {sizes}); max |diff| vs PyTorch " \
           f"{report['max_abs_diff_fp32']:.1e}"
    if "int8" in report:
        agree = report["int8"]["agreement_with_fp32"]
        line += f"; int8 agrees with fp32 on {agree:.1%} of predictions" if agree is not None else ""
    metrics = report.get("metrics")
    if metrics:
        line += "; " + report["metric"] + ": " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if v is not None)
    print(line)
