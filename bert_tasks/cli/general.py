"""Commands that are not tied to one task: --version, env, recipes."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
from pathlib import Path
from typing import Annotated, Optional

import typer
import yaml

from rich.console import Console
from rich.table import Table

from ..checkpoint import hub
from ..checkpoint.bundled import bundled_model_path
from ..config import find_recipe, list_recipes, read_yaml
from ..errors import BertTasksError
from ..training.hardware import cpu_bf16_flag
from ..io import atomic_write_text, output_folder
from ..tasks import resolve_recipe
from ..training.threads import choose_threads
from ..version import __version__
from .app import app, recipes_app, show_help_without_subcommand


def _version(value: bool) -> None:
    if value:
        print(f"bert-tasks {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = None,
) -> None:
    """Fine-tune and pretrain BERT. Add --debug anywhere to see tracebacks."""
    show_help_without_subcommand(ctx)


def _installed(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _device(torch_version: str) -> str:
    """The device a run would use, without importing torch (1-2 s) where it cannot be a GPU."""
    if "+cpu" in torch_version or not Path("/proc/driver/nvidia/version").exists():
        return f"cpu ({platform.machine()})"
    import torch  # local: 1-2 s to import; only a CUDA build on a machine with the NVIDIA driver asks it

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()})"


def _precision(device: str) -> str:
    """What ``mixed_precision: auto`` (the default) picks here, without importing torch on a CPU-only machine."""
    if not device.startswith("cpu"):
        return "auto: bf16 where this GPU supports it, else fp32"
    flag = cpu_bf16_flag()
    return f"auto: bf16 (this CPU computes bf16 natively: {flag})" if flag else "auto: fp32 (this CPU has no native bf16)"


def _hub_state() -> str:
    if hub.offline_mode():
        return "offline (HF_HUB_OFFLINE set)"
    if hub.reachable():
        return "reachable"
    return "unreachable (offline mode: use local files and the bundled --model minilm)"


@app.command()
def env() -> None:
    """Versions, device, the thread count a run would use and why, and whether the Hugging Face Hub is reachable.

    Example: bert-tasks env
    """
    rows = {"bert-tasks": __version__, "python": platform.python_version()}
    rows.update({name: _installed(name) for name in ("torch", "transformers", "datasets", "accelerate", "evaluate")})
    rows["device"] = _device(rows["torch"])
    rows["cpu cores"] = f"{os.cpu_count()} ({len(os.sched_getaffinity(0))} allowed)" if hasattr(os, "sched_getaffinity") else str(os.cpu_count())
    rows["torch threads"] = choose_threads().line()  # what a run started now would use, and why
    rows["mixed precision"] = _precision(rows["device"])
    rows["hub"] = _hub_state()
    try:
        rows["bundled model"] = f"{bundled_model_path()} (sha256 ok)"
    except BertTasksError as exc:
        rows["bundled model"] = exc.reason
    width = max(map(len, rows))
    for key, value in rows.items():
        print(f"{key:<{width}}  {value}")


def _recipe_summary(path: Path) -> tuple[str, str]:
    data = read_yaml(path)
    return str(data.get("task", "?")), str(data.get("description", "")).strip().splitlines()[0] if data.get("description") else ""


@recipes_app.command("list")
def recipes_list() -> None:
    """List packaged recipes: name, task and what each is for.

    Example: bert-tasks recipes list
    """
    table = Table(show_header=True, header_style="bold", box=None)
    for column in ("recipe", "task", "description"):
        table.add_column(column)
    for path in list_recipes():
        task, description = _recipe_summary(path)
        table.add_row(path.stem, task, description)
    Console(width=max(100, shutil.get_terminal_size().columns)).print(table)


@recipes_app.command("show")
def recipes_show(name: Annotated[str, typer.Argument(help="Recipe name or path.")]) -> None:
    """Print a recipe file as it is, comments included.

    Example: bert-tasks recipes show quickstart
    """
    print(find_recipe(name).read_text(encoding="utf-8"), end="")


@recipes_app.command("cp")
def recipes_cp(
    name: Annotated[str, typer.Argument(help="Recipe name.")],
    path: Annotated[str, typer.Argument(help="Destination file or folder.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy a packaged recipe to edit it; run it with --recipe PATH.

    Example: bert-tasks recipes cp squad-minilm-cpu my-squad.yaml
    """
    source = find_recipe(name)
    target = Path(path)
    if target.is_dir() or path.endswith(("/", os.sep)):  # a folder, named as one: the recipe goes inside
        target = output_folder(target) / source.name
    elif not target.parent.is_dir():
        raise BertTasksError("no such folder to copy into", file=target.parent)
    if target.exists() and not force:
        raise BertTasksError("already exists; pass --force to overwrite", file=target)
    atomic_write_text(target, source.read_text(encoding="utf-8"))
    print(f"copied {source.stem} to {target}")


@recipes_app.command("validate")
def recipes_validate(
    name: Annotated[str, typer.Argument(help="Recipe name or path.")],
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="key=value override (repeatable).")] = None,
) -> None:
    """Check that a recipe loads into the typed config; print the resolved result.

    Example: bert-tasks recipes validate glue-sst2 --set train.epochs=1
    """
    path = find_recipe(name)
    recipe = resolve_recipe(str(path), task=read_yaml(path)["task"], overrides=sets or [])
    print(recipe.to_yaml(), end="")
    if recipe.search is not None:  # no run setting, so not in to_yaml: shown as read, for the search it starts
        space = dict(item.split("=", 1) for item in recipe.search["space"])
        print(yaml.safe_dump({"search": {"trials": recipe.search["trials"], "space": space}}, sort_keys=False), end="")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="A run folder, seed folder, or --seeds/--grid root.")],
    run_b: Annotated[Path, typer.Argument(help="The run(s) to compare it with, on the same dev set.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON.")] = False,
) -> None:
    """Is A better than B? Medians over seeds, a paired bootstrap CI over dev examples, a rank test over seeds.

    Example: bert-tasks compare runs/mrpc-weighted runs/mrpc
    """
    import json

    from ..runner.compare import compare as compare_runs

    result = compare_runs(run_a, run_b)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    print(f"A: {run_a} ({len(result['a'])} run{'s' * (len(result['a']) > 1)})")
    print(f"B: {run_b} ({len(result['b'])} run{'s' * (len(result['b']) > 1)})")
    table = Table()
    for column in ("metric", "median A", "median B", "A - B"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name, row in result["metrics"].items():
        table.add_row(name, f"{row['median_a']:.4g}", f"{row['median_b']:.4g}", f"{row['difference']:+.4g}")
    Console().print(table)
    ranks = result["rank_test"]
    if ranks:
        print(f"Mann-Whitney U over seeds ({ranks['metric']}, {ranks['seeds_a']} vs {ranks['seeds_b']}): "
              f"U={ranks['u']:g}, p={ranks['p_value']:.3g}")
    print(result["verdict"])
