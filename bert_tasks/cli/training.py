"""``finetune <family>`` and ``pretrain <family>``: one command per registered task family, generated.

Each command's options come from the family's settings classes (:mod:`bert_tasks.cli.options`);
its body resolves the recipe (the family's defaults < recipe < ``--set`` < flags) and hands it
to the run template. A family registered later (a plug-in task, the tests' toy task) gets its
command the next time the CLI builds its tree.
"""

from __future__ import annotations

from typing import Any, Callable

from ..config import ModelSettings
from ..tasks import FAMILIES, TaskFamily, resolve_recipe
from . import options as o
from .app import finetune_app, pretrain_app

GROUPS = {"finetune": finetune_app, "pretrain": pretrain_app}
#: the commands made so far, by (group, family name)
COMMANDS: dict[tuple[str, str], Callable[..., Any]] = {}


def command_options(family: TaskFamily) -> list[o.SettingOption]:
    """The setting options of a family's training command (model, output folder, data, training)."""
    return o.recipe_options(family.config_class, family.model_flags, dict(family.defaults), family.refused_train_flags)


def resolve_command_recipe(family: TaskFamily, recipe: str | None, sets: list[str] | None, values: dict[str, Any],
                           options: list[o.SettingOption] | None = None):
    """Layer the family's defaults < recipe < --set < flags; ``values`` are the command's options by parameter name,
    ``options`` the command's own (made once, when the command is)."""
    options = options if options is not None else command_options(family)
    flags, clears = o.given_settings(options, values, {"data": family.config_class, "model": ModelSettings})
    sets = list(sets or [])
    for option in options:  # `--set data.task=X` means what `--task X` means, keys it also sets included
        for item in sets:
            key, _, value = item.partition("=")
            if key.strip() == option.key:
                sets += [f"{also}={value}" for also in option.field.metadata.get("also", ())]
    names = {o.key: "--" + o.param.replace("_", "-") for o in options}
    return resolve_recipe(recipe, task=family.name, overrides=[*sets, *clears], flags=flags, flag_names=names)


def training_command(family: TaskFamily) -> Callable[..., Any]:
    options = command_options(family)

    def command(**values: Any) -> None:
        from ..runner.sweeps import train  # local: importing the runner loads torch, which `--help` must not pay

        recipe = resolve_command_recipe(family, values["recipe"], values["sets"], values, options)
        train(recipe, overwrite=values["overwrite_output_dir"], resume_from=values["resume_from"],
              dry_run=values["dry_run"], seeds=o.parse_seeds(values["seeds"]), grid=o.parse_grid(values["grid"]),
              search=o.parse_search(values["search"], values["trials"], values["search_space"], recipe.search))

    command.__name__ = f"{family.command}_{family.name}"
    command.__doc__ = family.help + "".join(f"\n\nExample: {example}" for example in family.examples)
    return o.with_signature(command, options)


#: the family each command was made from, so a family registered again gets its command made again
MADE_FROM: dict[tuple[str, str], TaskFamily] = {}


def attach_training_commands() -> None:
    """Give every registered family its command, and a re-registered family a new one."""
    for family in FAMILIES.values():
        key = (family.command, family.name)
        if MADE_FROM.get(key) is family:
            continue
        group = GROUPS[family.command]
        old = COMMANDS.get(key)
        group.registered_commands[:] = [c for c in group.registered_commands if c.callback is not old]
        COMMANDS[key], MADE_FROM[key] = training_command(family), family
        group.command(family.name)(COMMANDS[key])
