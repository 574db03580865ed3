"""``--search optuna --trials N --search-space KEY=DIST``: a seeded TPE search over recipe keys, each trial a
complete run folder ``OUTPUT/trial-N``, the study in ``OUTPUT/search.db`` (SQLite) so ``--resume-from latest``
continues it, and unpromising trials pruned by the median rule at their evaluations (``--eval-steps``). A trial
that fails once its training has begun (a non-finite loss, memory) is recorded as failed with its reason and the
search goes on, its memory released first; one that fails before (bad input, which every trial would meet) stops it.
``search_summary.json`` holds every trial, the best, whether it can be told from the runner-up on the dev set
(:mod:`.compare`), and optuna's history and importance plots (``search_history.png``, ``search_importance.png``);
with ``--seeds`` the best point is trained again per seed (:func:`.sweeps.train`) and its median reported.

Optuna is an optional extra (``pip install 'bert-tasks[search]'``), imported only here, only when a search runs.
A distribution is ``uniform:LOW:HIGH``, ``loguniform:LOW:HIGH``, ``int:LOW:HIGH`` or ``choice:A,B,...``, or the same
as a call: ``float(LOW,HIGH)``, ``log(LOW,HIGH)``, ``int(LOW,HIGH)``, ``choice(A,B,...)``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Recipe, parse_scalar, with_settings
from ..errors import BertTasksError
from ..io import write_json
from ..tasks import get_task
from ..viz.plots import save_figure
from . import template
from .compare import against_runner_up
from .outputs import current
from .template import claim_run_folder, print_plan, root_of, run_is_main

SEARCH_DB = "search.db"
SEARCH_SUMMARY = "search_summary.json"
KINDS = ("uniform", "loguniform", "int", "choice")


@dataclass(frozen=True)
class Distribution:
    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")

    def ends(self) -> list[Any]:
        """The values a trial may take at the ends of the range (checked against the recipe before any trial)."""
        if self.kind == "choice":
            return list(self.choices)
        return [int(self.low), int(self.high)] if self.kind == "int" else [self.low, self.high]


#: the call spelling (``log(1e-5,1e-3)``, ``float(0,0.2)``, ``int(1,4)``, ``choice(16,32)``) -> the colon one
CALL_KINDS = {"log": "loguniform", "float": "uniform", **{kind: kind for kind in KINDS}}
_CALL = re.compile(r"\s*(\w+)\s*\((.*)\)\s*")


def _colon_form(spec: str) -> str:
    """``log(1e-5,1e-3)`` -> ``loguniform:1e-5:1e-3``, ``choice(16,32)`` -> ``choice:16,32``; others unchanged."""
    call = _CALL.fullmatch(spec)
    if call is None or call.group(1) not in CALL_KINDS:
        return spec
    kind, args = CALL_KINDS[call.group(1)], call.group(2)
    return f"{kind}:{args if kind == 'choice' else args.replace(',', ':')}"


def parse_space(items: list[str] | None) -> dict[str, Distribution]:
    """``["train.learning_rate=loguniform:1e-5:1e-3"]`` -> {key: Distribution}; one line for anything malformed."""
    space: dict[str, Distribution] = {}
    for item in items or []:
        key, _, spec = item.partition("=")
        kind, _, args = _colon_form(spec).partition(":")
        key, kind = key.strip(), kind.strip()
        example = "e.g. train.learning_rate=loguniform:1e-5:1e-3"
        if not key or kind not in KINDS or not args:
            raise BertTasksError(f"--search-space {item!r}: give KEY=DIST, DIST one of uniform:LOW:HIGH, "
                                 f"loguniform:LOW:HIGH, int:LOW:HIGH, choice:A,B or the calls float(LOW,HIGH), "
                                 f"log(LOW,HIGH), int(LOW,HIGH), choice(A,B) ({example})")
        if key in space:
            raise BertTasksError(f"--search-space: {key} is given twice")
        if kind == "choice":
            choices = tuple(parse_scalar(v) for v in args.split(","))
            if len(choices) < 2 or any(c is None for c in choices):
                raise BertTasksError(f"--search-space {item!r}: choice needs two or more non-empty values")
            space[key] = Distribution(key, kind, choices=choices)
            continue
        bounds = args.split(":")
        try:
            low, high = (float(b) for b in bounds) if len(bounds) == 2 else (None, None)
        except ValueError:
            low = high = None
        if low is None or not low < high or (kind == "loguniform" and low <= 0) or (
                kind == "int" and not (low.is_integer() and high.is_integer())):
            raise BertTasksError(f"--search-space {item!r}: {kind} needs LOW:HIGH with LOW < HIGH"
                                 + (", both positive" if kind == "loguniform" else "")
                                 + (", both integers" if kind == "int" else ""))
        space[key] = Distribution(key, kind, low, high)
    return space


def _optuna():
    if importlib.util.find_spec("optuna") is None:
        raise BertTasksError("--search optuna needs the optuna package: pip install 'bert-tasks[search]'")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def search(recipe: Recipe, space: dict[str, Distribution], trials: int, *, overwrite: bool, resume_from: str | None,
           dry_run: bool) -> dict[str, Any]:
    """Run the search (see the module docstring); returns the summary written to ``search_summary.json``.
    Long because the objective is a closure over the study's setup, and reads best as one piece."""
    if not space:
        raise BertTasksError("--search optuna needs at least one --search-space KEY=DIST")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise BertTasksError("--search runs in one process: each process would run its own trials; run it without "
                             "accelerate launch")
    for dist in space.values():  # a key that names no setting, or a value it refuses: one line, before anything
        for value in dist.ends():
            with_settings(recipe, {dist.key: value}, origin="--search-space")
    task = get_task(recipe.task)
    select = template.selection(task, recipe, always=True)
    root = root_of(recipe)
    if dry_run:
        print_plan(recipe, f"task '{recipe.task}': {trials} optuna trials over {', '.join(space)} into {root}/trial-<N>")
        return {}
    optuna = _optuna()
    claim_run_folder(recipe, overwrite=overwrite, resume=resume_from is not None)
    maximize = select.maximize
    study = optuna.create_study(
        study_name="bert-tasks", storage=f"sqlite:///{(root / SEARCH_DB).resolve()}", load_if_exists=True,
        direction="maximize" if maximize else "minimize",
        sampler=optuna.samplers.TPESampler(seed=recipe.train.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0))
    state = optuna.trial.TrialState
    _requeue_interrupted(study, state)
    # a resumed search draws on from where it stopped, not the first points again: the seed moves with the history
    study.sampler = optuna.samplers.TPESampler(seed=recipe.train.seed + len(study.trials))
    done = len([t for t in study.get_trials(deepcopy=False) if t.state in (state.COMPLETE, state.PRUNED)
                or (t.state == state.FAIL and "reason" in t.user_attrs)])

    def run_trial(trial: Any) -> float | str:
        """One trial's run: its score, or why it failed (a diverging loss, memory, a score that is not a number).
        Raises ``TrialPruned``, and anything that must stop the search: bad input, a bug, Ctrl-C."""
        params = {key: dist.suggest(trial) for key, dist in space.items()}
        sub = with_settings(recipe, params, origin="--search-space")
        sub.output_dir = str(root / f"trial-{trial.number}")
        trial.set_user_attr("folder", sub.output_dir)
        print(f"== trial {trial.number}: " + ", ".join(f"{k}={v}" for k, v in params.items()), flush=True)

        pruned = []

        def prune(step: int, value: float) -> bool:
            trial.report(value, step)
            if trial.should_prune():
                pruned.append(step)
            return bool(pruned)

        trainings = current().trainings_started
        try:
            metrics = template.train_one(task, sub, overwrite=True, stop_rule=prune)
        except template.RUN_FAILURES as exc:
            why = template.run_failure(exc, trainings)
            if why is None:
                raise  # before its training began: bad input, which every trial would meet
            return why
        value = metrics.get("best_metric")
        if value is None:
            raise BertTasksError(f"trial {trial.number} gave no {select.name} to search on (no validation data?)")
        if not math.isfinite(value):
            return f"its {select.name} is {value}"
        if pruned:
            raise optuna.TrialPruned(f"pruned at step {pruned[0]}")
        return float(value)

    for _ in range(trials - done):  # ask and tell, not study.optimize: a failed trial is told, in one line, not raised
        trial = study.ask()
        try:
            outcome = run_trial(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=state.PRUNED)
            continue
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                trial.set_user_attr("interrupted", True)  # a resumed search runs its point again
            study.tell(trial, state=state.FAIL)
            raise
        finally:
            template.release_memory()
        if isinstance(outcome, str):
            trial.set_user_attr("reason", outcome)
            study.tell(trial, state=state.FAIL)
            print(f"trial {trial.number}: failed ({outcome})", flush=True)
        else:
            study.tell(trial, outcome)
    summary = _summary(study, state, select.name, maximize)
    if run_is_main():
        summary["best_vs_runner_up"] = _against_runner_up(summary, maximize)
        summary["plots"] = _plots(optuna, study, root)
        write_json(root / SEARCH_SUMMARY, summary)
        _print(summary, root)
    return summary


def _requeue_interrupted(study: Any, state: Any) -> None:
    """The trials a Ctrl-C (failed, marked interrupted) or a kill (still RUNNING) cut off at the end of the study:
    their points go first in the resumed search."""
    trials = study.get_trials(deepcopy=False)
    cut = []
    for trial in reversed(trials):
        if trial.state == state.RUNNING or (trial.state == state.FAIL and trial.user_attrs.get("interrupted")):
            cut.append(trial)
        else:
            break
    for trial in reversed(cut):
        if trial.state == state.RUNNING:
            study.tell(trial.number, state=state.FAIL)
        study.enqueue_trial(trial.params)


def _summary(study: Any, state: Any, metric: str, maximize: bool) -> dict[str, Any]:
    rows = [{"trial": t.number, "state": t.state.name.lower(), "params": t.params, "value": t.value,
             "folder": t.user_attrs.get("folder"), "reason": t.user_attrs.get("reason")} for t in study.trials]
    complete = [row for row in rows if row["state"] == "complete"]
    best = (max if maximize else min)(complete, key=lambda row: row["value"]) if complete else None
    return {"chosen_on": "the dev set: the evaluation data of these runs, so its score is optimistic; confirm the "
                         "choice on held-out data",
            "metric": metric, "direction": "maximize" if maximize else "minimize", "best": best, "trials": rows}


def _against_runner_up(summary: dict[str, Any], maximize: bool) -> dict[str, Any] | None:
    """The best trial against the second best, on the dev set (:func:`.compare.against_runner_up`)."""
    best = summary["best"]
    others = [row for row in summary["trials"] if row["state"] == "complete" and row is not best]
    if best is None or not others:
        return None
    runner_up = (max if maximize else min)(others, key=lambda row: row["value"])
    return against_runner_up(Path(best["folder"]), Path(runner_up["folder"]), f"trial {runner_up['trial']}")


#: optuna's own plots (its matplotlib backend), each with the finished trials it needs
PLOTS = {"search_history.png": ("plot_optimization_history", 1), "search_importance.png": ("plot_param_importances", 2)}


def _plots(optuna: Any, study: Any, root: Path) -> dict[str, Any]:
    """The search's history and its parameters' importance (optuna's default evaluator) as PNGs in the search
    folder: file -> path, or why it was not drawn (too few finished trials). What optuna warns while drawing
    (few trials make importances equal) is kept beside them, under ``notes``, not printed."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")  # a file, never a window
    from matplotlib import pyplot

    complete = len([t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE])
    drawn: dict[str, Any] = {}
    for name, (function, needs) in PLOTS.items():
        if complete < needs:
            drawn[name] = f"not drawn: {complete} finished trial{'s' * (complete != 1)}, it needs {needs}"
            continue
        with warnings.catch_warnings(record=True) as heard:
            warnings.simplefilter("always")
            axes = getattr(optuna.visualization.matplotlib, function)(study)
        axes.figure.tight_layout()  # optuna leaves long parameter names cut at the left edge
        drawn[name] = str(save_figure(axes.figure, root / name))
        pyplot.close(axes.figure)
        notes = sorted({str(w.message) for w in heard if not issubclass(w.category, optuna.exceptions.ExperimentalWarning)})
        if notes:
            drawn.setdefault("notes", {})[name] = notes
    return drawn


def _print(summary: dict[str, Any], root: Path) -> None:
    for row in summary["trials"]:
        value = "" if row["value"] is None else f" {summary['metric']}={row['value']:.4g}"
        reason = f" ({row['reason']})" if row.get("reason") else ""
        print(f"trial {row['trial']}: {row['state']}{value}{reason} {row['params']}", flush=True)
    best = summary["best"]
    if best is None:
        raise BertTasksError("no trial finished", file=root / SEARCH_SUMMARY)
    print(f"chosen on the dev set: trial {best['trial']} ({best['folder']}), {summary['metric']} {best['value']:.4g}; "
          "its dev score is optimistic, confirm it on held-out data", flush=True)
    against = summary.get("best_vs_runner_up")
    if against:
        print(f"against the runner-up, {against['runner_up']} (A: chosen, B: runner-up): {against['verdict']}", flush=True)


