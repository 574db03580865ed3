"""The task registry: every task, by name, and the family (CLI command) it belongs to.

A :class:`TaskFamily` is one command of the CLI (``finetune glue``, ``finetune squad``, ``pretrain
mlm``): its settings class, its own defaults, its help, and the tasks it runs. The CLI generates
each family's command from this table and the runner looks tasks up here, so adding a task is
one :func:`register` call and a module implementing :class:`bert_tasks.protocol.Task`: nothing
in the CLI, the runner, the training loop or the checkpoint code changes.

Importing this module is cheap: families name their settings class (plain dataclasses) and
import a task's module only when the task is asked for.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ..config import find_recipe, read_yaml, search_block
from ..config import resolve_recipe as resolve_settings
from ..errors import BertTasksError

if TYPE_CHECKING:  # the protocol imports torch; the registry is read by `--help`, which must not
    from ..protocol import Task
from .classify.config import ClassifyDataConfig
from .glue.config import ALL_TASKS, GlueDataConfig
from .glue.spec import TASK_NAMES as GLUE_TASKS
from .mlm.config import MlmDataConfig
from .ner.config import NerDataConfig
from .squad.config import SquadDataConfig


def lazy(module: str, name: str, *args: Any, **kwargs: Any) -> Callable[..., Any]:
    """``module.name(*args, **kwargs)``, importing the module on the first call."""
    def call(*more: Any, **extra: Any) -> Any:
        target = getattr(importlib.import_module(module), name)
        return target(*args, *more, **kwargs, **extra)

    return call


@dataclass(frozen=True)
class TaskFamily:
    #: the word after ``finetune``/``pretrain`` on the command line
    name: str
    #: ``finetune`` or ``pretrain``
    command: str
    #: the ``data:`` section's settings class
    config_class: type
    #: task name -> factory of the task object
    tasks: Mapping[str, Callable[[], Task]]
    #: the task a recipe of this family that names none runs
    default_task: str
    #: the command's own defaults, below any recipe (e.g. run_glue.py's lr 2e-5, batch 32)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: the command's help: one line, more lines, then examples
    help: str = ""
    examples: tuple[str, ...] = ()
    #: which model settings the command offers as flags
    model_flags: tuple[str, ...] = ("name_or_path", "backend")
    #: training settings the family refuses, so its command does not offer them (SQuAD: unpad)
    refused_train_flags: tuple[str, ...] = ()
    #: the data settings its ``eval`` and ``predict`` commands offer as flags (those declared ``inherit=True``
    #: default to what the model folder was trained with)
    eval_flags: tuple[str, ...] = ()
    predict_flags: tuple[str, ...] = ()
    #: a recipe that stands for several runs (GLUE's ``task: all``): recipe -> sub-recipes, or None for one run
    expand: Callable[[Any], Any] | None = None
    #: what to print and write once every sub-run of an expanded recipe is done: (results, root folder) -> None
    report: Callable[[dict[str, Any], Any], None] | None = None


FAMILIES: dict[str, TaskFamily] = {}
#: task name -> its family's name
TASK_FAMILY: dict[str, str] = {}


def register(family: TaskFamily) -> TaskFamily:
    """Add (or replace) a family and its tasks; the CLI picks it up the next time it builds its commands."""
    FAMILIES[family.name] = family
    for name in family.tasks:
        TASK_FAMILY[name] = family.name
    TASK_FAMILY.setdefault(family.name, family.name)
    return family


def task_names() -> list[str]:
    return [name for name in TASK_FAMILY if name not in FAMILIES or name in FAMILIES[name].tasks]


def family_of(task: str, *, file: Any = None) -> TaskFamily:
    if task not in TASK_FAMILY:
        names = task_names()
        close = difflib.get_close_matches(task, names, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; known tasks: {', '.join(names)}"
        raise BertTasksError(f"unknown task '{task}'{hint}", file=file)
    return FAMILIES[TASK_FAMILY[task]]


def get_task(name: str, *, file: Any = None) -> Task:
    """The task object for a task name (a family name means the family's default task)."""
    family = family_of(name, file=file)
    return family.tasks[name if name in family.tasks else family.default_task]()


def resolve_recipe(recipe: str | None, *, task: str, overrides: list[str] = (), flags: dict[str, Any] | None = None,
                   defaults: dict[str, Any] | None = None, flag_names: dict[str, str] | None = None):
    """:func:`bert_tasks.config.resolve_recipe` for a task of the registry: its family's settings class and defaults.

    ``task`` is what the command runs when the recipe names none; a recipe of another family is refused.
    """
    family = family_of(task)
    content = search = None
    if recipe:
        path = find_recipe(recipe)
        content = read_yaml(path)  # read once: resolving layers this same content
        if family_of(content["task"], file=path) is not family:
            raise BertTasksError(f"recipe is for task '{content['task']}', which this command does not run", file=path)
        search = search_block(content, path)
    layered = {**family.defaults, **(defaults or {})}
    resolved = resolve_settings(recipe, task=task, data_class=family.config_class, overrides=overrides, flags=flags,
                                defaults=layered, flag_names=flag_names, recipe_data=content)
    resolved.search = search
    return resolved


GLUE = register(TaskFamily(
    name="glue", command="finetune", config_class=GlueDataConfig, default_task="sst2",
    tasks={name: lazy("bert_tasks.tasks.glue.task", "GlueTask", name) for name in GLUE_TASKS},
    defaults={  # run_glue.py's README settings, below any recipe
        "train.learning_rate": 2e-5, "train.batch_size": 32, "train.epochs": 3.0,
        "train.weight_decay": 0.0,  # TrainingArguments' default
        "train.eval_batch_size": 64, "data.max_seq_length": 128,
    },
    help="Fine-tune on a GLUE task (or all of them) with run_glue.py's defaults: lr 2e-5, batch 32, 3 epochs, 128 tokens.",
    examples=("bert-tasks finetune glue --task sst2 --model minilm --data-dir glue_data/SST-2 --output-dir runs/sst2",),
    expand=lazy("bert_tasks.tasks.glue.run", "expand"), report=lazy("bert_tasks.tasks.glue.run", "report"),
    model_flags=("name_or_path", "backend", "pooling", "attention_score", "attention_query"),
    eval_flags=("task", "data_dir", "dataset", "validation_file", "test_file", "max_seq_length", "max_eval_samples",
                "do_predict"),
))
SQUAD = register(TaskFamily(
    name="squad", command="finetune", config_class=SquadDataConfig, default_task="squad",
    tasks={"squad": lazy("bert_tasks.tasks.squad.task", "SquadTask", version_2=False),
           "squad_v2": lazy("bert_tasks.tasks.squad.task", "SquadTask", version_2=True)},
    defaults={  # run_qa.py's README settings (bert-base-uncased on SQuAD), below any recipe
        "train.learning_rate": 3e-5, "train.batch_size": 12, "train.epochs": 2.0,
        "train.weight_decay": 0.0,  # TrainingArguments' default
    },  # the data settings' own defaults are run_qa.py's (SquadDataConfig)
    help="Fine-tune extractive QA with run_qa.py's defaults: squad from the Hub, 2 epochs, lr 3e-5, batch 12, "
         "384 tokens, stride 128.\n\nOffline, start with the bundled model and the built-in sample.",
    examples=("bert-tasks finetune squad --recipe quickstart --output-dir runs/quickstart --overwrite-output-dir",
              "bert-tasks finetune squad --model minilm --train-file train-v1.1.json --validation-file dev-v1.1.json "
              "--output-dir runs/squad"),
    refused_train_flags=("unpad",),  # SquadDataConfig.settle says why
    eval_flags=("validation_file", "dataset", "version_2_with_negative", "null_score_diff_threshold", "n_best_size",
                "max_answer_length", "max_seq_length", "doc_stride", "max_eval_samples"),
    predict_flags=("null_score_diff_threshold", "max_seq_length", "doc_stride", "max_answer_length"),
))
CLASSIFY = register(TaskFamily(
    name="classify", command="finetune", config_class=ClassifyDataConfig, default_task="classify",
    tasks={"classify": lazy("bert_tasks.tasks.classify.task", "ClassifyTask")},
    defaults={  # run_classification.py's settings are run_glue.py's: TrainingArguments' defaults but lr and batch
        "train.learning_rate": 2e-5, "train.batch_size": 32, "train.epochs": 3.0,
        "train.weight_decay": 0.0,  # TrainingArguments' default
        "train.eval_batch_size": 64,
    },
    help="Fine-tune text classification on your own data: any labels (inferred from the training file), multi-label "
         "or regression; CSV, TSV, JSON Lines, Parquet or a Hub dataset.\n\n"
         "The problem type follows the labels: a list per row (JSON) or --label-delimiter is multi-label (sigmoid, "
         "a threshold tuned on dev), fractional numbers are regression, anything else single-label classes.",
    examples=("bert-tasks finetune classify --train-file train.csv --validation-file dev.csv --output-dir runs/mine",
              "bert-tasks finetune classify --train-file train.jsonl --validation-file dev.jsonl "
              "--text-columns question,answer --label-column topics --output-dir runs/topics"),
    model_flags=("name_or_path", "backend", "pooling", "attention_score", "attention_query"),
    eval_flags=("validation_file", "test_file", "dataset", "dataset_config", "text_columns", "label_column",
                "label_delimiter", "threshold", "max_seq_length", "max_eval_samples", "do_predict"),
    predict_flags=("threshold",),
))
NER = register(TaskFamily(
    name="ner", command="finetune", config_class=NerDataConfig, default_task="ner",
    tasks={"ner": lazy("bert_tasks.tasks.ner.task", "NerTask")},
    defaults={  # run_ner.py's README run (bert-base on conll2003) with TrainingArguments' defaults, below any recipe:
        # lr 5e-5, batch 8 (train and eval), 3 epochs, no weight decay. run_ner.py's max_seq_length defaults to the
        # model's 512; the data settings default to 128 (NerDataConfig): CoNLL sentences are short, and a longer one
        # becomes overlapping windows, so nothing is cut
        "train.learning_rate": 5e-5, "train.batch_size": 8, "train.epochs": 3.0,
        "train.weight_decay": 0.0, "train.eval_batch_size": 8,
    },
    help="Fine-tune token classification (NER) with run_ner.py's defaults: lr 5e-5, batch 8, 3 epochs.\n\n"
         "Data: CoNLL columns (word ... tag, blank lines between sentences), JSON Lines (tokens, tags) or a Hub "
         "dataset (tokens, ner_tags). Tags: IO, BIO, IOB1 or BIOES, found or given; an I-X after O or after another "
         "type starts an entity (conlleval's rule), in training, scoring and prediction alike.\n\n"
         "The first sub-token of a word carries its tag; a sentence longer than --max-seq-length becomes "
         "overlapping windows (--doc-stride), each word scored once, from the window where it has most context.",
    examples=("bert-tasks finetune ner --model minilm --train-file train.conll --validation-file dev.conll "
              "--output-dir runs/ner",),
    eval_flags=("validation_file", "dataset", "dataset_config", "tag_scheme", "max_seq_length", "doc_stride",
                "max_eval_samples"),
    predict_flags=("max_seq_length", "doc_stride"),
))
MLM = register(TaskFamily(
    name="mlm", command="pretrain", config_class=MlmDataConfig, default_task="mlm",
    tasks={"mlm": lazy("bert_tasks.tasks.mlm.task", "MlmTask")},
    defaults={  # pretraining from scratch, not MiniLM fine-tuning
        "model.name_or_path": None, "model.preset": "mini",
        "train.learning_rate": 5e-4,  # small BERTs from scratch want far more than fine-tuning's 2e-5
        "train.batch_size": 32, "train.warmup_ratio": 0.06, "train.weight_decay": 0.01,
        "train.eval_batch_size": 64, "train.epochs": 1.0,
    },
    help="Pretrain a BERT with masked-LM on a text corpus: WordPiece tokenizer, packed sequences, dynamic masking.\n\n"
         "A fresh model comes from --preset; --model continues pretraining a checkpoint with its own tokenizer.\n\n"
         "The output folder works with transformers' fill-mask pipeline and with `finetune glue|squad --model`.",
    examples=("bert-tasks pretrain mlm --recipe mlm-tiny --train-file corpus.txt --output-dir runs/mlm-tiny",),
    model_flags=("name_or_path", "backend", "preset", "position_embedding_type"),
))

__all__ = ["ALL_TASKS", "FAMILIES", "TaskFamily", "family_of", "get_task", "register", "resolve_recipe", "task_names"]
