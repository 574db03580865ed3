"""The `bert-tasks` command line: thin wrappers that parse, resolve a recipe and call the library.

Errors a user can fix print as one line (`error: FILE: RECORD: REASON`) with exit
code 2; `--debug` anywhere on the command line shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys

import typer

try:  # typer vendors its own click; its usage errors are not the installed click's classes
    from typer._click import exceptions as click_exceptions
except ImportError:  # older typer uses the click package
    from click import exceptions as click_exceptions

from ..errors import BertTasksError
from .app import app

#: command modules, each attaching its commands to the groups in app.py
COMMAND_MODULES = ("general", "squad", "glue", "mlm", "viz")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise


def _quiet_progress_bars() -> None:
    """Progress bars are for people at a terminal; in CI logs they bury the one line that matters."""
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _discard_unfinished_outputs() -> None:
    if "bert_tasks.runner" in sys.modules:
        sys.modules["bert_tasks.runner"].discard_unfinished_outputs()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    # Under torchrun / accelerate launch every process runs this; only rank 0 speaks, unless it fails.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if debug else logging.ERROR if quiet_rank else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "transformers", "accelerate", "huggingface_hub", "evaluate"):
        logging.getLogger(noisy).setLevel(logging.ERROR if not debug else logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not sys.stderr.isatty():
        _quiet_progress_bars()
    _load_commands()
    try:
        result = app(args=argv, prog_name="bert-tasks", standalone_mode=False)
        return int(result or 0) if isinstance(result, int) else 0
    except BertTasksError as exc:
        _discard_unfinished_outputs()
        if debug:
            raise
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except click_exceptions.UsageError as exc:
        if debug:
            raise
        print(f"error: {exc.format_message()} (see `bert-tasks {' '.join(a for a in argv if not a.startswith('-'))[:60]} --help`)".replace("  ", " "), file=sys.stderr)
        return 2
    except click_exceptions.Exit as exc:
        return exc.exit_code
    except click_exceptions.Abort:
        print("aborted", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        _discard_unfinished_outputs()
        print("interrupted", file=sys.stderr)
        return 130


def _close_process_group() -> None:
    """Leave a launcher's process group together: a worker that exits while a peer is
    still talking to it can be aborted by gloo at interpreter shutdown."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        try:
            torch.distributed.barrier()
        finally:
            torch.distributed.destroy_process_group()


def entry_point() -> None:
    code = main()
    if code == 0:
        _close_process_group()
    sys.exit(code)
