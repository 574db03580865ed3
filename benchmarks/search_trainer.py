"""Hyperparameter search on real GLUE subsets: our optuna search (pruned) against a 12-point grid and the Trainer's.

Per task (SST-2, MRPC, STS-B from ``../shared/data``, the first ``--train-samples`` training and ``--eval-samples``
dev examples, the bundled MiniLM, fp32 everywhere, 1 epoch, max length 128), over one space:

(a) ``bert-tasks finetune glue --search optuna --trials 12`` over the continuous space: learning rate log-uniform
    in [3e-5, 3e-4], batch choice(16, 32), warmup ratio uniform in [0, 0.1]; seeded TPE, median pruning at every
    ``--eval-steps`` evaluation, each trial scored by its best evaluation (the state it keeps);
(b) ``--grid`` over the 12 points lr {3e-5, 1e-4, 3e-4} x batch {16, 32} x warmup {0, 0.1}, each trained to the
    end and scored there (no intermediate evaluations: nothing to prune);
(c) ``Trainer.hyperparameter_search(backend="optuna", n_trials=12, direction="maximize")`` over (a)'s space with
    ``model_init``, the same TPE seed and median pruner, evaluating every ``--eval-steps`` steps and at the end,
    each trial scored by its last evaluation (the Trainer's objective).

Each method's best point is then trained again over seeds 1, 2, 3, to the end (ours with ``--seeds``, the Trainer's
with ``Trainer.train``): the median (min-max) of the task's GLUE score on the dev subset, and the wall times.

Then early stopping on SST-2 (ours: ``--eval-steps K --early-stopping-patience P --select-best accuracy`` against
the same runs trained to the end, 3 seeds): the steps trained and the dev medians. Then ``bert-tasks compare`` on
glue_seeds' MRPC runs (its ``run_ours`` and ``run_trainer``, on a subset, 3 seeds): the verdict, quoted.

    python -m benchmarks search_trainer            # the recorded run (about an hour on 2 CPU cores)
    python -m benchmarks search_trainer --quick    # a smoke run: 1 task, 2 trials, 32 examples, 1 seed, not recorded
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import glue_seeds
from benchmarks._record import DATA, load_note, shown
from benchmarks._side_by_side import ROOT

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

FOLDERS = {"sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B"}
#: the one space: the grid's 12 points, and the ranges the two optuna searches draw from
LRS, BATCHES, WARMUPS = (3e-5, 1e-4, 3e-4), (16, 32), (0.0, 0.1)
OURS_SPACE = ("train.learning_rate=loguniform:3e-5:3e-4", "train.batch_size=choice:16,32",
              "train.warmup_ratio=uniform:0:0.1")
EVAL_BATCH, WEIGHT_DECAY = 128, 0.0
#: early stopping's fixed point (glue_seeds' hyperparameters)
ES_LR, ES_BATCH, ES_WARMUP = 1e-4, 32, 0.1
#: the MedianPruner both searches use (ours' settings, given to the Trainer's study too)
PRUNER = {"n_startup_trials": 2, "n_warmup_steps": 0}


def grid() -> list[dict]:
    """The 12 grid points, as {learning_rate, batch_size, warmup_ratio}."""
    return [{"learning_rate": lr, "batch_size": b, "warmup_ratio": w} for lr, b, w in itertools.product(LRS, BATCHES, WARMUPS)]


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks search_trainer", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder holding SST-2/, MRPC/, STS-B/")
    parser.add_argument("--tasks", default="sst2,mrpc,stsb")
    parser.add_argument("--parts", default="search,early,compare")
    parser.add_argument("--train-samples", type=int, default=320)
    parser.add_argument("--eval-samples", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--eval-steps", type=int, default=5, help="the searches' evaluations (and pruning points)")
    parser.add_argument("--seeds", default="1,2,3", help="the seeds each best point is trained again with")
    parser.add_argument("--search-seed", type=int, default=1, help="the TPE seed and every trial's training seed")
    parser.add_argument("--es-train-samples", type=int, default=640)
    parser.add_argument("--es-epochs", type=float, default=3.0)
    parser.add_argument("--es-eval-steps", type=int, default=10)
    parser.add_argument("--es-patience", type=int, default=2)
    parser.add_argument("--compare-train-samples", type=int, default=500)
    parser.add_argument("--compare-epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every run (default: every core)")
    parser.add_argument("--keep", type=Path, default=None, help="keep every run folder here")
    parser.add_argument("--quick", action="store_true", help="1 task, 2 trials, 32 examples, 2 grid points, 1 seed, not recorded")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: KIND,TASK,WORK[,SEED] of a child process
    parser.add_argument("--params", help=argparse.SUPPRESS)  # internal: a point, as JSON
    args = parser.parse_args(argv)
    if args.quick:
        args.tasks, args.train_samples, args.eval_samples, args.trials, args.seeds = "sst2", 32, 32, 2, "1"
        args.eval_steps, args.es_train_samples, args.es_epochs, args.es_eval_steps, args.es_patience = 1, 32, 2.0, 1, 1
        args.compare_train_samples, args.compare_epochs, args.max_seq_length, args.no_record = 32, 1.0, 64, True
    return args


def points(args) -> list[dict]:
    return grid()[4:6] if args.quick else grid()  # quick: lr 1e-4, batch 16, both warmups


def score(task: str, metrics: dict, prefix: str = "") -> float:
    """The task's GLUE score (the mean of its score keys) from flat metrics."""
    from bert_tasks.tasks.glue.spec import get_spec

    return statistics.mean(float(metrics[prefix + k]) for k in get_spec(task).score_keys)


# --------------------------------------------------------------------------- ours, through the CLI


def ours_flags(args, task: str, out: Path, *, train_samples: int | None = None, epochs: float | None = None) -> list[str]:
    flags = ["finetune", "glue", "--task", task, "--data-dir", str(args.data / FOLDERS[task]), "--model", "minilm",
             "--max-train-samples", str(train_samples or args.train_samples), "--max-eval-samples", str(args.eval_samples),
             "--epochs", f"{epochs or args.epochs:g}", "--max-seq-length", str(args.max_seq_length),
             "--mixed-precision", "no", "--eval-batch-size", str(EVAL_BATCH), "--logging-steps", "10000",
             "--set", f"train.weight_decay={WEIGHT_DECAY}", "--output-dir", str(out), "--overwrite-output-dir"]
    return flags + (["--set", f"train.num_threads={args.threads}"] if args.threads else [])


def point_flags(point: dict) -> list[str]:
    return ["--learning-rate", f"{point['learning_rate']:.6g}", "--batch-size", str(int(point["batch_size"])),
            "--warmup-ratio", f"{point['warmup_ratio']:.6g}"]


def timed(command: list[str]) -> float:
    """Run a child process (its output passes through); its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, *command], check=True, cwd=ROOT, stdout=sys.stderr)
    return time.perf_counter() - start


def bert_tasks(flags: list[str]) -> float:
    return timed(["-m", "bert_tasks", *flags])


def seed_scores(task: str, root: Path, seeds: list[int]) -> list[float]:
    return [score(task, json.loads((root / f"seed-{s}" / "eval_results.json").read_text())) for s in seeds]


def ours_search(args, task: str, work: Path) -> dict:
    out = work / f"{task}-optuna"
    flags = ours_flags(args, task, out) + ["--seed", str(args.search_seed), "--search", "optuna", "--trials",
                                           str(args.trials), "--eval-steps", str(args.eval_steps)]
    seconds = bert_tasks(flags + [f for item in OURS_SPACE for f in ("--search-space", item)])
    summary = json.loads((out / "search_summary.json").read_text())
    best = {k.removeprefix("train."): v for k, v in summary["best"]["params"].items()}
    states = [t["state"] for t in summary["trials"]]
    return {"best": best, "value": summary["best"]["value"], "seconds": seconds,
            "complete": states.count("complete"), "pruned": states.count("pruned")}


def plain(value: float) -> str:
    """A grid value as YAML reads back the same number (YAML 1.1 reads ``3e-05`` as a string): no exponent."""
    return f"{value:.10f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def grid_flags(args) -> list[str]:
    """``--grid`` flags whose combinations are exactly :func:`points`."""
    chosen, flags = points(args), []
    for key in ("learning_rate", "batch_size", "warmup_ratio"):
        flags += ["--grid", f"train.{key}=" + ",".join(map(plain, sorted({p[key] for p in chosen})))]
    return flags


def ours_grid(args, task: str, work: Path) -> dict:
    out = work / f"{task}-grid"
    seconds = bert_tasks(ours_flags(args, task, out) + ["--seed", str(args.search_seed)] + grid_flags(args))
    summary = json.loads((out / "grid_summary.json").read_text())
    best = {k.removeprefix("train."): v for k, v in summary["best"]["settings"].items()}
    return {"best": best, "value": summary["best"]["main_metric_median"], "seconds": seconds,
            "complete": len(summary["points"]), "pruned": 0}


def ours_seeds(args, task: str, point: dict, out: Path, seeds: list[int]) -> dict:
    seconds = bert_tasks(ours_flags(args, task, out) + point_flags(point) + ["--seeds", ",".join(map(str, seeds))])
    return {"scores": seed_scores(task, out, seeds), "seconds": seconds}


# --------------------------------------------------------------------------- the Trainer, in a child process


def trainer_setup(args, task: str):
    """(tokenizer, train set, dev set, model_init, compute_metrics) of one task's subsets, as glue_seeds'
    run_trainer builds them (its trainer_data and trainer_metrics)."""
    from transformers import AutoModelForSequenceClassification

    from bert_tasks.checkpoint import bundled_model_path
    from bert_tasks.tasks.glue.spec import get_spec

    tokenizer, _, train_set, dev = glue_seeds.trainer_data(task, args.data / FOLDERS[task], args.train_samples,
                                                args.max_seq_length, args.eval_samples)

    def model_init(trial=None):
        return AutoModelForSequenceClassification.from_pretrained(str(bundled_model_path()),
                                                                  num_labels=get_spec(task).num_labels)

    return tokenizer, train_set, dev, model_init, glue_seeds.trainer_metrics(task)


def training_arguments(args, out: Path, seed: int, point: dict | None, eval_steps: int | None):
    from transformers import TrainingArguments

    point = point or {"learning_rate": 1e-4, "batch_size": 32, "warmup_ratio": 0.0}
    return TrainingArguments(
        output_dir=str(out), learning_rate=point["learning_rate"], per_device_train_batch_size=int(point["batch_size"]),
        per_device_eval_batch_size=EVAL_BATCH, num_train_epochs=args.epochs, weight_decay=WEIGHT_DECAY,
        lr_scheduler_type="linear", warmup_steps=float(point["warmup_ratio"]),  # below 1: a ratio (rounded up)
        max_grad_norm=1.0, seed=seed, save_strategy="no", eval_strategy="steps" if eval_steps else "no",
        eval_steps=eval_steps, logging_steps=10_000, report_to="none", use_cpu=True, disable_tqdm=True, bf16=False)


def trainer_search(args, task: str, work: Path) -> dict:
    """Trainer.hyperparameter_search over the space, eval every --eval-steps and at the end, pruned by the median."""
    import optuna
    from transformers import DataCollatorWithPadding, Trainer, TrainerCallback

    class EvaluateAtEnd(TrainerCallback):
        """The last step evaluated too, as ours does: a trial's objective is then its final state's score."""

        def on_step_end(self, targs, state, control, **kwargs):
            if state.global_step >= state.max_steps:
                control.should_evaluate = True

    tokenizer, train_set, dev, model_init, metrics = trainer_setup(args, task)
    start = time.perf_counter()
    trainer = Trainer(model_init=model_init, args=training_arguments(args, work / f"trainer-{task}-search",
                                                                     args.search_seed, None, args.eval_steps),
                      train_dataset=train_set, eval_dataset=dev, data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=metrics, callbacks=[EvaluateAtEnd()])

    def hp_space(trial):
        return {"learning_rate": trial.suggest_float("learning_rate", LRS[0], LRS[-1], log=True),
                "per_device_train_batch_size": trial.suggest_categorical("batch_size", list(BATCHES)),
                "warmup_steps": trial.suggest_float("warmup_ratio", WARMUPS[0], WARMUPS[-1])}

    storage = f"sqlite:///{(work / f'trainer-{task}-search.db').resolve()}"
    best = trainer.hyperparameter_search(
        hp_space=hp_space, compute_objective=lambda m: score(task, m, "eval_"), n_trials=args.trials,
        direction="maximize", backend="optuna", study_name="trainer", storage=storage,
        sampler=optuna.samplers.TPESampler(seed=args.search_seed), pruner=optuna.pruners.MedianPruner(**PRUNER))
    seconds = time.perf_counter() - start
    states = [t.state.name.lower() for t in optuna.load_study(study_name="trainer", storage=storage).trials]
    return {"best": best.hyperparameters, "value": best.objective, "seconds": seconds,
            "complete": states.count("complete"), "pruned": states.count("pruned")}


def trainer_seeds(args, task: str, point: dict, work: Path, seeds: list[int]) -> dict:
    """The point trained to the end once per seed with a plain Trainer, scored at the end."""
    from transformers import DataCollatorWithPadding, Trainer, set_seed

    scores = []
    tokenizer, train_set, dev, model_init, metrics = trainer_setup(args, task)
    for seed in seeds:
        set_seed(seed)
        trainer = Trainer(model=model_init(), args=training_arguments(args, work / f"trainer-{task}-{seed}", seed, point, None),
                          train_dataset=train_set, eval_dataset=dev, data_collator=DataCollatorWithPadding(tokenizer),
                          compute_metrics=metrics)
        trainer.train()
        scores.append(score(task, trainer.evaluate(), "eval_"))
    return {"scores": scores}


def child(args, kind: str, task: str, work: Path, *extra: str) -> dict:
    """Run one Trainer job (``trainer_search``/``trainer_seeds``/``compare_run``) in a fresh process; its result,
    ``seconds`` the process's whole wall time (startup, imports and data included, as for ours' CLI runs)."""
    command = [sys.executable, "-m", "benchmarks.search_trainer", *args.argv, "--one", ",".join([kind, task, str(work), *extra])]
    if kind == "trainer_seeds":
        command += ["--params", json.dumps(args.point)]
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, cwd=ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["inside_seconds"] = result.get("seconds")  # what the child timed itself, startup excluded
    result["seconds"] = time.perf_counter() - start  # the whole process, as ours' searches are timed
    return result


def run_child(args) -> dict:
    kind, task, work, *extra = args.one.split(",")
    work = Path(work)
    if kind == "trainer_search":
        return trainer_search(args, task, work)
    if kind == "trainer_seeds":
        return trainer_seeds(args, task, json.loads(args.params), work, [int(s) for s in args.seeds.split(",")])
    if kind == "compare_run":  # glue_seeds' own run of MRPC, ours or the Trainer's, one seed
        setup = next(s for s in glue_seeds.SETUPS if s.task == task)
        shared = argparse.Namespace(data=args.data, threads=args.threads, train_samples=lambda s: args.compare_train_samples,
                                    epochs=lambda s: args.compare_epochs)
        name, seed = extra
        run = (glue_seeds.run_trainer(setup, shared, int(seed), work) if name == "trainer"
               else glue_seeds.run_ours(setup, shared, int(seed), work, "no"))
        return {"score": run["score"], "seconds": run["seconds"]}
    raise ValueError(kind)


# --------------------------------------------------------------------------- the three parts


def search_part(args, task: str, work: Path, seeds: list[int]) -> dict:
    rows = {}
    for method, run in (("optuna", ours_search), ("grid", ours_grid), ("trainer", None)):
        print(f"== {FOLDERS[task]}: {method} search", flush=True)
        found = child(args, "trainer_search", task, work) if run is None else run(args, task, work)
        point = {k: found["best"][k] for k in ("learning_rate", "batch_size", "warmup_ratio")}
        print(f"   best {point} ({found['value']:.4f}) in {found['seconds']:.0f} s; "
              f"{found['complete']} complete, {found['pruned']} pruned", flush=True)
        print(f"== {FOLDERS[task]}: {method}'s best over seeds {seeds}", flush=True)
        if run is None:
            args.point = point
            again = child(args, "trainer_seeds", task, work)
        else:
            again = ours_seeds(args, task, point, work / f"{task}-{method}-best", seeds)
        print(f"   {[round(100 * s, 2) for s in again['scores']]} in {again['seconds']:.0f} s", flush=True)
        rows[method] = {**found, "best": point, "rerun": again}
    return rows


def early_part(args, work: Path, seeds: list[int]) -> dict:
    rows = {}
    point = {"learning_rate": ES_LR, "batch_size": ES_BATCH, "warmup_ratio": ES_WARMUP}
    extra = {"end": [], "early": ["--eval-steps", str(args.es_eval_steps), "--early-stopping-patience",
                                  str(args.es_patience), "--select-best", "accuracy"]}
    for name, flags in extra.items():
        print(f"== SST-2 early stopping: {name}", flush=True)
        out = work / f"sst2-es-{name}"
        seconds = bert_tasks(ours_flags(args, "sst2", out, train_samples=args.es_train_samples, epochs=args.es_epochs)
                             + point_flags(point) + flags + ["--seeds", ",".join(map(str, seeds))])
        runs = []
        for seed in seeds:
            trained = json.loads((out / f"seed-{seed}" / "train_results.json").read_text())
            runs.append({"steps": trained["global_step"], "stopped_early": trained["stopped_early"],
                         "kept": (trained["best"] or {}).get("step", trained["global_step"])})
        rows[name] = {"scores": seed_scores("sst2", out, seeds), "runs": runs, "seconds": seconds}
    return rows


def compare_part(args, work: Path, seeds: list[int]) -> dict:
    from bert_tasks.runner.compare import compare

    scores: dict[str, list[float]] = {"ours": [], "trainer": []}
    for seed in seeds:  # seed by seed, both in turn, each in its own process (as glue_seeds runs them)
        for name in scores:
            print(f"== MRPC compare: {name} seed {seed}", flush=True)
            scores[name].append(child(args, "compare_run", "mrpc", work, name, str(seed))["score"])
    found = compare(work / "mrpc-no", work / "trainer-mrpc")
    return {"scores": scores, "verdict": found["verdict"], "rank_test": found["rank_test"],
            "bootstrap": found["bootstrap"]}


# --------------------------------------------------------------------------- the report


def spread(values: list[float]) -> str:
    return (f"{100 * statistics.median(values):.2f} ({100 * min(values):.2f}-{100 * max(values):.2f})"
            if values else "-")


def shown_point(point: dict) -> str:
    return f"lr {point['learning_rate']:.3g}, batch {int(point['batch_size'])}, warmup {point['warmup_ratio']:.3g}"


def render(args, searched: dict, early: dict | None, compared: dict | None, seeds: list[int], loads: tuple) -> str:
    import torch

    seed_text = ", ".join(map(str, seeds))
    lines = [
        f"Data: `{shown(args.data)}` (GLUE layout); per task the first {args.train_samples} training and the first "
        f"{args.eval_samples} dev examples. Bundled MiniLM-L6-H384, fp32 on both sides, {args.epochs:g} epoch(s), max length "
        f"{args.max_seq_length}, weight decay {WEIGHT_DECAY:g}, linear schedule, {torch.get_num_threads()} torch threads. "
        "Score: the task's GLUE score on the dev subset (SST-2 accuracy; MRPC mean of F1 and accuracy; STS-B mean of "
        "Pearson and Spearman).",
        "",
        f"Space: optuna (ours and the Trainer's) draws lr log-uniform in [{LRS[0]:g}, {LRS[-1]:g}], batch from "
        f"{{{', '.join(map(str, BATCHES))}}}, warmup ratio uniform in [{WARMUPS[0]:g}, {WARMUPS[-1]:g}]; the grid is its "
        f"{len(grid())} points lr {{{', '.join(f'{v:g}' for v in LRS)}}} x batch {{{', '.join(map(str, BATCHES))}}} x "
        f"warmup {{{', '.join(f'{v:g}' for v in WARMUPS)}}}. Both optuna searches: {args.trials} trials, TPE seeded "
        f"{args.search_seed}, every trial trained with seed {args.search_seed}, MedianPruner(n_startup_trials="
        f"{PRUNER['n_startup_trials']}, n_warmup_steps={PRUNER['n_warmup_steps']}) at evaluations every "
        f"{args.eval_steps} steps and at the end. Ours scores a trial by its best evaluation (the state it keeps), "
        "the Trainer by its last (its objective); the grid trains each point to the end and scores it there. Each "
        f"best point is then trained to the end with seeds {seed_text} (ours with `--seeds`, the Trainer's with "
        "`Trainer.train`), scored at the end. The Trainer's warmup ratio is rounded up to steps, ours down.",
        "",
        "Search wall = the whole search (one process, startup included); re-run wall = the seeds' runs together.",
    ]
    names = {"optuna": "ours, optuna + pruning", "grid": "ours, 12-point grid" if not args.quick else "ours, grid",
             "trainer": "Trainer.hyperparameter_search"}
    for task, rows in searched.items():
        lines += ["", f"{FOLDERS[task]}:", "",
                  "| method | best point | its search score | search wall (s) | trials complete / pruned "
                  f"| best point over seeds {seed_text}: median (min-max) | re-run wall (s) |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        lines += [f"| {names[m]} | {shown_point(r['best'])} | {100 * r['value']:.2f} | {r['seconds']:.0f} | "
                  f"{r['complete']} / {r['pruned']} | {spread(r['rerun']['scores'])} | {r['rerun']['seconds']:.0f} |"
                  for m, r in rows.items()]
    if early:
        steps = lambda name: ", ".join(str(r["steps"]) for r in early[name]["runs"])  # noqa: E731
        saved = [e["steps"] - f["steps"] for e, f in zip(early["early"]["runs"], early["end"]["runs"])]
        lines += ["", f"Early stopping, SST-2 (first {args.es_train_samples} training examples, {args.es_epochs:g} epochs, "
                  f"lr {ES_LR:g}, batch {ES_BATCH}, warmup {ES_WARMUP:g}; seeds {seed_text}): evaluating every "
                  f"{args.es_eval_steps} steps, patience {args.es_patience}, keeping the best state by accuracy, "
                  "against the same runs trained to the end and scored there.", "",
                  "| run | steps trained per seed | step kept per seed | stopped early | dev accuracy, median (min-max) "
                  "| wall (s) |", "| --- | --- | --- | ---: | ---: | ---: |"]
        for name, label in (("end", "to the end"), ("early", "early stopping")):
            row = early[name]
            lines.append(f"| {label} | {steps(name)} | {', '.join(str(r['kept']) for r in row['runs'])} | "
                         f"{sum(r['stopped_early'] for r in row['runs'])} of {len(row['runs'])} | "
                         f"{spread(row['scores'])} | {row['seconds']:.0f} |")
        lines += ["", f"Steps saved per seed: {', '.join(str(-s) for s in saved)}."]
    if compared:
        ranks = compared["rank_test"]
        lines += ["", f"`bert-tasks compare` on glue_seeds' MRPC runs (its `run_ours` fp32 and `run_trainer`, "
                  f"the first {args.compare_train_samples} training pairs, {args.compare_epochs:g} epoch(s), whole dev set, "
                  f"seeds {seed_text}; a subset, not the recorded glue_seeds run, whose folders were temporary): "
                  f"ours {spread(compared['scores']['ours'])}, the Trainer {spread(compared['scores']['trainer'])} "
                  "(GLUE score, median (min-max)).", "",
                  f"> {compared['verdict']}"]
        if ranks:
            lines.append(f"> Mann-Whitney U over seeds ({ranks['metric']}): U = {ranks['u']:g}, p = {ranks['p_value']:.2f}")
    lines += ["", f"{load_note(*loads)}."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from benchmarks._side_by_side import start

    argv, args = start(argv, parse_args)
    if args.one:
        print(json.dumps(run_child(args)))
        return
    args.argv = [a for a in argv if a != "--quick"] + (["--quick"] if args.quick else [])
    args.argv += [] if "--threads" in argv else ["--threads", str(args.threads)]
    seeds = [int(s) for s in args.seeds.split(",")]
    parts = args.parts.split(",")
    load_start = os.getloadavg()[0]
    searched, early, compared = {}, None, None
    with tempfile.TemporaryDirectory(prefix="search-trainer-") as tmp:
        work = Path(tmp) if args.keep is None else args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
        if "search" in parts:
            for task in args.tasks.split(","):
                searched[task] = search_part(args, task, work, seeds)
        if "early" in parts:
            early = early_part(args, work, seeds)
        if "compare" in parts:
            compared = compare_part(args, work, seeds)
    markdown = render(args, searched, early, compared, seeds, (load_start, os.getloadavg()[0]))
    print(markdown)
    if not args.no_record:
        from benchmarks._record import record

        record("search_trainer", markdown)


if __name__ == "__main__":
    main()
