"""The error boundary every `bert-tasks` command runs inside (:func:`main`):

* an error the user can fix prints one line, ``error: FILE: RECORD: REASON``, exit code 2;
* a usage error (unknown or repeated option, bad value) names the command's own ``--help``, exit code 2;
* Ctrl-C prints ``interrupted`` and, when a checkpoint was saved, the command that resumes, exit code 130;
* a file-system failure naming a file (disk full, permission denied): one line naming it, exit code 1;
* anything else is a bug: one line saying so and where the traceback was written, exit code 1.

In each case a run folder that holds no results yet is removed, exactly as for a bad input.
``--debug`` anywhere on the command line shows tracebacks instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import re
import logging
import os
import shlex
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

import typer

from ..errors import BertTasksError, from_ctrl_c
from ..runner.outputs import Ledger, open_ledger
from ..tasks import FAMILIES, TASK_FAMILY
from .app import app
from .interrupts import InterruptWatch

#: command modules, each attaching its commands to the groups in app.py
COMMAND_MODULES = ("general", "squad", "glue", "classify", "ner", "viz", "training", "export")
PROG = "bert-tasks"
EXIT_BUG = 1
EXIT_INTERRUPTED = 130
#: one clean-up after Ctrl-C, whichever thread gets there first (the watchdog's, or the main one)
_CLEANING = threading.Lock()


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    sys.modules[f"{__package__}.training"].attach_training_commands()  # families registered since: their commands too


def _quiet_progress_bars() -> None:
    """Progress bars are for people at a terminal; in CI logs they bury the one line that matters.

    The libraries read these variables when they are imported, so nothing heavy is imported here
    (importing transformers to switch its bars off cost `--help` a second).
    """
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    # already imported (main called from Python, as the tests do): switch them off directly
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


def _clean_up(ledger: Ledger) -> tuple[list[Path], list[Path]]:
    return ledger.discard_unfinished()


def resume_command(argv: list[str]) -> str:
    """The command line that continues an interrupted run from its latest checkpoint."""
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--resume-from":
            skip = True
            continue
        if word.startswith("--resume-from=") or word == "--overwrite-output-dir":
            continue
        words.append(word)
    return shlex.join([PROG, *words, "--resume-from", "latest"])


def _interrupted(argv: list[str], ledger: Ledger, *, forced: str | None = None) -> int:
    with _CLEANING:  # the watchdog and the main thread may both get here: one clean-up, one message
        if ledger.interrupted:
            return EXIT_INTERRUPTED
        ledger.interrupted = True
        _, kept = _clean_up(ledger)
        resumable = [p for p in kept if any(p.glob("**/checkpoints/step-*/trainer_state.json"))]
        message = "interrupted" + (f" ({forced})" if forced else "")
        if resumable:
            message += f"; resume with: {resume_command(argv)}"
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.write(2, (message + "\n").encode())  # not print: this may run in the watchdog, mid-write of the main thread
        return EXIT_INTERRUPTED


def _bug(exc: BaseException, argv: list[str], ledger: Ledger) -> int:
    """One line for an unexpected exception; the traceback goes to a file the line names."""
    _, kept = _clean_up(ledger)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = f"{PROG} {shlex.join(argv)}\n\n" + "".join(traceback.format_exception(exc))
    log = None
    for folder in [*kept, Path(tempfile.gettempdir())]:
        candidate = folder / (f"crash-{stamp}.log" if folder in kept else f"bert-tasks-crash-{stamp}-{os.getpid()}.log")
        try:
            candidate.write_text(text, encoding="utf-8")
            log = candidate
            break
        except OSError:
            continue
    where = f"the traceback is in {log}" if log else "the traceback could not be written"
    summary = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    print(f"error: internal error ({summary}); this is a bug in {PROG}: {where} (or add --debug to see it)",
          file=sys.stderr, flush=True)
    return EXIT_BUG


def command_path(command, argv: list[str]) -> tuple[Any, list[str]]:
    """The command the words of ``argv`` name (``finetune glue ...`` -> the glue command) and its path."""
    path = [PROG]
    for word in argv:
        sub = getattr(command, "commands", {}).get(word)
        if sub is None:
            break
        command, path = sub, [*path, word]
    return command, path


def _usage_error(exc: typer.TyperException, command, argv: list[str]) -> int:
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else " ".join(command_path(command, argv)[1])
    message = exc.format_message().strip().replace("\n", " ")
    unknown = re.match(r"No such command '([^']+)'", message)
    if unknown:  # `finetune mnli`: a task of a family, not a command of its own
        family = FAMILIES.get(TASK_FAMILY.get(unknown.group(1), ""))
        if family is not None and family.name != unknown.group(1):
            option = next((f"--{f.name}" for f in dataclasses.fields(family.config_class) if f.name == "task"), "--task")
            message = message.rstrip(".") + f"; did you mean `bert-tasks {family.command} {family.name} {option} {unknown.group(1)}`?"
    print(f"error: {message} (see `{where} --help`)", file=sys.stderr, flush=True)
    return 2


class RepeatedOption(Exception):
    """An option that keeps one value was given twice."""

    def __init__(self, message: str, command: str):
        super().__init__(message)
        self.command = command


def check_repeated_options(command, argv: list[str]) -> None:
    """Refuse an option given twice that keeps only one value (click would silently keep the last).

    ``command`` is the click group of the whole CLI (``typer.main.get_command(app)``); the words
    that name subcommands lead to the command that runs, whose options are then counted.
    """
    command, path = command_path(command, argv)
    start = len(path) - 1
    options = {name: param for param in getattr(command, "params", [])
               if param.param_type_name == "option" and not param.multiple and not param.is_eager
               for name in (*param.opts, *param.secondary_opts)}
    seen: dict[str, str] = {}
    words = iter(argv[start:])
    for word in words:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        param = options.get(name)
        if param is None:
            continue
        if not param.is_flag and "=" not in word:
            next(words, None)  # its value, which may itself look like an option
        if param.name in seen:
            first = seen[param.name]
            both = f"{first} and {name}" if first != name else f"{name} twice"
            raise RepeatedOption(f"got {both}; this option takes one value", " ".join(path))
        seen[param.name] = name


def _environment_error(exc: OSError, ledger: Ledger) -> int:
    """A file-system failure the user can act on (disk full, permission denied): one line naming the file."""
    _clean_up(ledger)
    print(f"error: {exc.filename}: {exc.strerror or type(exc).__name__}", file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with open_ledger() as ledger:  # this command's output folders, also for the watchdog's thread
        return _run(argv, ledger)


def _run(argv: list[str], ledger: Ledger) -> int:
    """:func:`main` for one command: logging set up, the command run inside the boundary, every exit mapped."""
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    # Under torchrun / accelerate launch every process runs this; only rank 0 speaks, unless it fails.
    quiet_rank = os.environ.get("RANK", "0") != "0"
    level = logging.DEBUG if debug else logging.ERROR if quiet_rank else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("datasets", "transformers", "accelerate", "huggingface_hub", "evaluate"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL if not debug else logging.INFO)  # their errors reach us as ours
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not debug:  # read when they are imported: their own log setup would override a level set here
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("DATASETS_VERBOSITY", "error")
    if not sys.stderr.isatty():
        _quiet_progress_bars()

    def force_exit(reason: str) -> None:  # from the watchdog thread: the main thread is stuck
        try:
            _interrupted(argv, ledger, forced=reason)
        finally:
            os._exit(EXIT_INTERRUPTED)  # whatever the clean-up met, the process ends

    command = None
    with InterruptWatch(force_exit):
        try:
            _load_commands()  # inside the boundary: a plug-in task whose settings clash is one line too
            command = typer.main.get_command(app)
            check_repeated_options(command, argv)
            with command.make_context(PROG, argv) as ctx:
                command.invoke(ctx)
            return 0
        except typer.Exit as exc:
            return exc.exit_code
        except typer.Abort:
            print("aborted", file=sys.stderr)
            return 1
        except RepeatedOption as exc:
            print(f"error: {exc} (see `{exc.command} --help`)", file=sys.stderr, flush=True)
            return 2
        except typer.TyperException as exc:  # usage errors: unknown option, missing or bad value
            if debug:
                raise
            return _usage_error(exc, command, argv)
        except BertTasksError as exc:
            _clean_up(ledger)
            if debug:
                raise
            print(f"error: {exc.one_line()}", file=sys.stderr, flush=True)
            return exc.exit_code
        except KeyboardInterrupt:
            if debug:
                _clean_up(ledger)
                raise
            return _interrupted(argv, ledger)
        except BrokenPipeError:  # the reader went away (`bert-tasks ... | head`): nothing more to say, and no one to say it to
            _clean_up(ledger)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not complain either
            return 1
        except OSError as exc:
            if from_ctrl_c(exc) and not debug:  # the standard library's clean-up tripped over the Ctrl-C
                return _interrupted(argv, ledger)
            if debug:
                _clean_up(ledger)
                raise
            return _environment_error(exc, ledger) if exc.filename and exc.strerror else _bug(exc, argv, ledger)
        except Exception as exc:  # noqa: BLE001 - the one place every unexpected error is reported
            if from_ctrl_c(exc) and not debug:
                return _interrupted(argv, ledger)
            if debug:
                _clean_up(ledger)
                raise
            return _bug(exc, argv, ledger)


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
