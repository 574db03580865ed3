"""Files: inputs read as regular files only, and crash-safe output (atomic writes, output-folder protection).

A file is written to a temporary name in its own folder, fsynced, then
renamed over the target, so a kill at any moment leaves either the old file or
the new one, never half of one. An input is checked with ``stat`` before it is opened, so a FIFO, a socket
or a device is one line, not a read that never returns.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import BertTasksError


def input_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is no input file the toolkit can read (None: a regular file). Read with ``stat``, never
    opened: opening a FIFO with no writer blocks for ever."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None if os.access(path, os.R_OK) else "is not readable (permission denied)"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
    return f"is {kind}, not a regular file; give a file"


def require_input_file(path: str | os.PathLike, what: str = "input file") -> Path:
    """``path`` as a Path, or one line saying why it is not a regular, readable file."""
    problem = input_problem(path)
    if problem is not None:
        raise BertTasksError(f"{what} {problem}", file=path)
    return Path(path)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders; rename is still atomic there
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(final: Path) -> Path:
    """A hidden, unused-looking name beside ``final`` (``.NAME.RANDOM.tmp``). Chosen before anything is made,
    so the clean-up that removes it is already in force when the file or folder appears: a Ctrl-C can land
    between any two lines, and one inside ``tempfile.mkstemp`` after it made the file would leave it behind."""
    return final.with_name(f".{final.name}.{secrets.token_hex(6)}.tmp")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    tmp = temporary_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never an existing file; mode 0666 less the umask, what a plain open() gives, so colleagues
        # and serving processes can read a model folder on a shared machine
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None: JSON has no NaN, and null says "undefined"."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write ``obj`` as strict JSON; an undefined metric (a NaN correlation) is written as null."""
    atomic_write_text(path, json.dumps(finite_or_none(obj), indent=indent, ensure_ascii=False, allow_nan=False) + "\n")


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one line; a torn last line is the worst a kill can leave, and readers skip it.

    After a resume, the torn fragment is closed with a newline first so it stays one bad
    line at worst instead of corrupting the next record.
    """
    path = Path(path)
    prefix = ""
    if path.exists() and path.stat().st_size:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            prefix = "" if f.read(1) == b"\n" else "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(prefix + json.dumps(finite_or_none(record), ensure_ascii=False) + "\n")
        f.flush()


@contextmanager
def atomic_directory(final: str | os.PathLike, *, staging: str | os.PathLike | None = None,
                     commit: bool = True) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it into place when complete (files and parent fsynced).

    If ``final`` exists it is replaced only after the new folder is complete (and put back if the swap is cut
    off). ``staging``: the temporary folder, named by the caller when several processes write into it (a sharded
    checkpoint): the committing process makes it, empty, and the others wait for it (a barrier first thing
    inside the ``with``). ``commit``: this process makes the staging folder and renames it into place, or
    removes it after an error.
    """
    final = Path(final)
    tmp = temporary_name(final) if staging is None else Path(staging)
    old = final.with_name(f".{final.name}.old")
    try:  # everything that makes the folder inside the try: a Ctrl-C on any line leaves nothing
        final.parent.mkdir(parents=True, exist_ok=True)
        if staging is None:
            tmp.mkdir()  # 0777 less the umask, as any folder the user makes
        elif commit:
            shutil.rmtree(tmp, ignore_errors=True)  # a staging folder a killed run left
            tmp.mkdir()
        yield tmp
        if not commit:
            return
        for child in tmp.rglob("*"):
            if child.is_file():
                with open(child, "rb") as f:
                    os.fsync(f.fileno())
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_dir(final.parent)
    except BaseException:  # an error or Ctrl-C mid-write: no half-written folder is left behind
        if commit:
            if old.exists() and final.exists():
                shutil.rmtree(old, ignore_errors=True)  # the swap was done
            elif old.exists():
                os.replace(old, final)  # cut off between the two renames: the previous folder stays
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def output_folder(path: str | os.PathLike) -> Path:
    """A folder results may be written into (made if missing): refused in one line if a file is in the way."""
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise BertTasksError(f"{blocker} is a file, not a folder", file=path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BertTasksError(f"cannot create the folder ({exc.strerror or type(exc).__name__})", file=path) from None
    return path


def output_file(path: str | os.PathLike, *, suffix: str | None = None) -> Path:
    """A file path results may be written to: not a folder, its folder there (or made), the suffix it must have."""
    path = Path(path)
    if path.is_dir() or str(path).endswith(os.sep):
        raise BertTasksError(f"is a folder; give a file path{f' ending in {suffix}' if suffix else ''}", file=path)
    if suffix and path.suffix.lower() != suffix:
        raise BertTasksError(f"must end in {suffix}", file=path)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # checked now; the folder itself is made when the file is written
        raise BertTasksError(f"{blocker} is a file, not a folder", file=path)
    return path


def prepare_output_dir(path: str | os.PathLike, *, overwrite: bool = False, resume: bool = False) -> Path:
    """Refuse to write into a non-empty folder unless the user asked for it; check it can be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BertTasksError("output path exists and is not a folder", file=path)
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise BertTasksError(f"cannot create the output folder: {blocker} is a file, not a folder", file=path)
    if path.exists() and any(path.iterdir()) and not (overwrite or resume):
        raise BertTasksError(
            "output folder is not empty; pass --overwrite-output-dir to replace it or --resume-from to continue",
            file=path,
        )
    try:
        if overwrite and path.exists() and not resume:
            shutil.rmtree(path)
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".write-test.")  # mkdir alone passes on some read-only mounts
        probe.close()
    except OSError as exc:
        raise BertTasksError(f"cannot write the output folder ({exc.strerror or type(exc).__name__})", file=path) from None
    return path
