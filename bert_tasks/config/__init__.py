"""Recipes: versioned YAML files validated into typed dataclasses, and every setting declared once.

A recipe has four sections, ``model``, ``data`` (the task's own dataclass), ``train`` and
``output_dir``, plus the ``task`` it runs. Each setting is one dataclass field made with
:func:`setting`: its type (``Literal`` for a choice), default, help, command-line flag and bounds
live there, and the recipe loader, the CLI (which generates its options from these fields),
``recipes validate`` and the docs all read them from there.

Loading is strict: an unknown key, a value of the wrong type or out of bounds is an error
naming the key and the file. Settings are layered, later winning: dataclass defaults < the
command's own defaults (run_glue.py's, run_qa.py's) < recipe file < ``--set a.b=value`` < flags.

========= ===========================================================================
declare   ``setting``, ``Settings``, ``require`` and the strict conversion of values
sections  ``ModelSettings``, ``TrainConfig``, ``DataSettings`` (every task's base), ``Recipe``
recipes   recipe files, the recipe a run folder kept, layering into one ``Recipe``
========= ===========================================================================

Torch-free: ``--help`` and ``recipes validate`` read it without loading torch.
"""

from .declare import YAML_BOOLS, Settings, check_bounds, coerce, from_dict, require, setting, type_hints
from .recipes import (find_recipe, list_recipes, parse_override, parse_scalar, read_yaml, recipes_dir, resolve_recipe,
                      search_block, set_path, trained_recipe, trained_settings, with_settings)
from .sections import EVAL_DIR, Backend, DataSettings, ModelSettings, Preset, Recipe, TrainConfig

__all__ = ["EVAL_DIR", "YAML_BOOLS", "Backend", "DataSettings", "ModelSettings", "Preset", "Recipe", "Settings",
           "TrainConfig", "check_bounds", "coerce", "find_recipe", "from_dict", "list_recipes", "parse_override",
           "parse_scalar", "read_yaml", "recipes_dir", "require", "resolve_recipe", "search_block", "set_path", "setting", "trained_recipe",
           "trained_settings", "type_hints",
           "with_settings"]
