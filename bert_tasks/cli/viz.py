"""Commands that draw: `plot` (a run's curves and confusion matrix) and `attention` (attention maps).

matplotlib and torch are imported inside the commands: together 2-3 s that `--help` must not pay.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import BertTasksError
from ..io import output_file
from .app import app


@app.command()
def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run's output folder (holds train_log.jsonl).")],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder for the PNGs (default: the run folder).")] = None,
) -> None:
    """Plot a run: training loss and learning rate, evaluation metrics, and the GLUE confusion matrix.

    Example: bert-tasks plot runs/sst2 --out runs/sst2/plots
    """
    from ..viz.plots import plot_run

    for path in plot_run(run_dir, out):
        print(path)


@app.command()
def attention(
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG to write; --json writes the weights beside it (.json).")],
    model: Annotated[str, typer.Option("--model", "-m", help="HF model folder, hub id, or 'minilm' (bundled).")] = "minilm",
    text: Annotated[Optional[str], typer.Option("--text", help="Text to look at.")] = None,
    text_pair: Annotated[Optional[str], typer.Option("--text-pair", help="Second text of a sentence pair.")] = None,
    question: Annotated[Optional[str], typer.Option("--question", help="Question (with --context): span-QA view; use a SQuAD-fine-tuned model.")] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="Context the answer is taken from.")] = None,
    layer: Annotated[Optional[int], typer.Option("--layer", help="Layer, from 0 (default: the last).")] = None,
    head: Annotated[Optional[int], typer.Option("--head", help="Head, from 0 (default: a grid of all heads; with --question, their mean).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Also write the weights as {tokens, layer, head?, weights}.")] = False,
    pooling_weights: Annotated[bool, typer.Option("--pooling-weights", help="Draw a classifier's attention pooling weights over the tokens, with its prediction.")] = False,
) -> None:
    """Draw the attention of one layer: every head in a grid, one head, or a QA answer against its question.

    With --pooling-weights, draw instead what a classifier with an attention pooling head
    (finetune glue --pooling attention) reads: its weight on each token, and the label it predicts.

    Example: bert-tasks attention --text "The cat sat on the mat because it was tired." --layer 3 --out attn.png
    Example: bert-tasks attention --model runs/sst2-attention --text "a gripping, funny film" --pooling-weights --out pool.png
    """
    from ..viz.attention import attention_maps, check_layer_head, head_figure, layer_grid_figure, qa_figure, qa_spans, span_text
    from ..checkpoint.files import read_config
    from ..checkpoint.load import build_config, load_pretrained
    from ..checkpoint.locate import resolve_model_dir
    from ..checkpoint.tokenizer import load_tokenizer
    from ..io import write_json
    from ..viz.plots import save_figure

    out = output_file(out, suffix=".png")
    qa = question is not None or context is not None
    if qa and (text is not None or text_pair is not None):
        raise BertTasksError("pass either --text [--text-pair] or --question with --context, not both")
    if qa and (question is None or context is None):
        raise BertTasksError("--question and --context go together")
    if not qa and text is None:
        raise BertTasksError("nothing to look at; pass --text, or --question with --context")
    if pooling_weights:
        if qa or layer is not None or head is not None:
            raise BertTasksError("--pooling-weights draws a classifier's pooling over --text [--text-pair]; "
                                 "drop --question/--context/--layer/--head")
        return draw_pooling_weights(out, model, text, text_pair, json_out)

    # The config alone knows the sizes: a bad --layer fails before any weights load.
    model_dir = resolve_model_dir(model)
    config = build_config(read_config(model_dir), None, source=model_dir / "config.json")  # any family's names
    num_layers = config.num_hidden_layers
    layer = num_layers - 1 if layer is None else layer
    check_layer_head(num_layers, config.num_attention_heads, layer, head)
    # the QA view marks the answer the model predicts: only a trained QA head has one to mark
    net = load_pretrained(model_dir, task="squad" if qa else None, trained_head=qa)
    tokenizer = load_tokenizer(model_dir)
    maps = attention_maps(net, tokenizer, question if qa else text, context if qa else text_pair)

    extra = {}
    if qa:
        spans = qa_spans(maps)
        fig = qa_figure(maps, *spans, layer=layer, head=head)
        extra = dict(zip(("question_span", "context_span", "answer_span"), map(list, spans)))
        extra["answer"] = span_text(maps.tokens, spans[2])
        print(f"answer: {extra['answer']}")
    elif head is None:
        fig = layer_grid_figure(maps, layer)
    else:
        fig = head_figure(maps, layer, head)
    print(save_figure(fig, out))
    if json_out:
        json_path = out.with_suffix(".json")
        write_json(json_path, {**maps.to_json(layer, head), **extra}, indent=None)
        print(json_path)


def draw_pooling_weights(out: Path, model: str, text: str, text_pair: str | None, json_out: bool) -> None:
    """`attention --pooling-weights`: the weights `predict glue` returns, drawn under the tokens."""
    from ..viz.attention import pooling_figure
    from ..checkpoint.files import read_config
    from ..checkpoint.locate import resolve_model_dir
    from ..io import write_json
    from ..model.spec import POOLING_KEY
    from ..viz.plots import save_figure
    from ..tasks.glue.inference import predict_text

    folder = resolve_model_dir(model)
    pooling = (read_config(folder).get(POOLING_KEY) or {}).get("pooling", "cls")
    if pooling != "attention":
        raise BertTasksError(f"this model pools by {pooling}, which has no weights to draw; --pooling-weights needs a "
                             "classifier trained with --pooling attention", file=folder / "config.json")
    result = predict_text(folder, text, text_pair)
    shown = f"{result['label']} ({result['score']:.3f})"
    weights = result["pooling_weights"]
    print(f"prediction: {shown}")
    print(save_figure(pooling_figure(weights["tokens"], weights["weights"], f"attention pooling weights; prediction: {shown}"), out))
    if json_out:
        json_path = out.with_suffix(".json")
        write_json(json_path, {**weights, "label": result["label"], "score": result["score"]}, indent=None)
        print(json_path)
