"""`eval ner` and `predict ner`; `finetune ner` is generated from the registry (training.py).

Their data options are the NER settings' own (:class:`~bert_tasks.tasks.ner.config.NerDataConfig`).
The runner and the task modules are imported inside the commands: they load torch, which `--help` must not.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ..config import TrainConfig, trained_settings
from ..tasks import NER, get_task
from ..tasks.ner.config import NerDataConfig
from .app import eval_app, predict_app
from .options import Backend, PRECISION_SWITCH, data_options, eval_switches, switch, with_signature

TrainedModel = Annotated[str, typer.Option("--model", "-m", help="A fine-tuned NER model folder.")]


def eval_ner(**values) -> None:
    """Score a fine-tuned folder on a dev set: eval_results.json (entity-level seqeval scores) and eval_predictions.jsonl.

    The tag set is the model's; the scheme and the window settings default to the folder's recipe.yaml.

    Example: bert-tasks eval ner --model runs/ner --validation-file dev.conll
    """
    from ..checkpoint.load import require_trained_head
    from ..runner.template import evaluate_folder

    model, backend, output_dir, eval_batch_size, precision = (
        values.pop(k) for k in ("model", "backend", "output_dir", "eval_batch_size", "mixed_precision"))
    require_trained_head(model, "ner")  # before its recipe.yaml is read as an NER one
    cfg = trained_settings(model, NerDataConfig, values)
    cfg.validate()
    evaluate_folder(get_task("ner"), model, cfg, output_dir=output_dir, backend=backend or "scratch",
                    batch_size=eval_batch_size or TrainConfig.eval_batch_size, precision=precision)


eval_app.command("ner")(with_signature(eval_ner, data_options(NerDataConfig, NER.eval_flags), switches=eval_switches(TrainedModel)))


def predict_ner(**values) -> None:
    """Tag the entities of a text: each one's type, score, words and character offsets (start, end) in the text.

    Words are split as transformers' token-classification pipeline splits them; a word takes its first sub-token's
    tag (aggregation_strategy="first"); an I-X after O or another type starts an entity (conlleval's rule).

    Example: bert-tasks predict ner --model runs/ner --text "Ada Lovelace was born in London." --json
    """
    from ..tasks.ner.inference import EntityTagger

    model, text, backend, as_json, precision = (
        values.pop(k) for k in ("model", "text", "backend", "as_json", "mixed_precision"))
    entities = EntityTagger(model, backend=backend or "scratch", precision=precision, **values)(text)
    if as_json:
        print(json.dumps({"text": text, "entities": entities}, ensure_ascii=False))
        return
    if not entities:
        print("(no entities)")
    for e in entities:
        print(f"{e['entity_group']}\t{e['word']}\tcharacters {e['start']}-{e['end']}\tscore {e['score']:.4f}")


predict_app.command("ner")(with_signature(predict_ner, data_options(NerDataConfig, NER.predict_flags), switches=(
    switch("model", TrainedModel, ...),
    switch("text", Annotated[str, typer.Option("--text", help="The text to tag.")], ...),
    switch("backend", Backend),
    switch("as_json", Annotated[bool, typer.Option("--json", help="Print one JSON object: the text and its entities.")], False),
    PRECISION_SWITCH)))
