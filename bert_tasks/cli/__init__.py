"""The `bert-tasks` command line: thin wrappers that parse, resolve a recipe and call the library.

========== =========================================================================
boundary   ``main``: the one error boundary (one-line errors, Ctrl-C, bugs), ``entry_point``
app        the command groups
training   ``finetune``/``pretrain <family>``, generated from the task registry
options    options made from the settings dataclasses, each declared once
glue squad ``eval``/``predict`` of each task family
general    ``env``, ``recipes``, ``version``, ``compare``
viz        ``plot``, ``attention``
interrupts the Ctrl-C watchdog
========== =========================================================================
"""

from .boundary import PROG, entry_point, main

__all__ = ["PROG", "entry_point", "main"]
