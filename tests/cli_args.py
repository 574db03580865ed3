"""Command-line helpers for tests: the CLI refuses an option given twice, so overrides replace."""

from __future__ import annotations


#: options that may be given many times: always appended
REPEATABLE = ("--set", "--train-file", "--report-to")


def with_options(base: list, *extra) -> list:
    """``base`` with each ``--option value`` of ``extra`` replacing the same option in it (or appended)."""
    extra = [str(e) for e in extra]
    out = [str(b) for b in base]
    i = 0
    while i < len(extra):
        name = extra[i]
        takes_value = i + 1 < len(extra) and not extra[i + 1].startswith("--")
        value = [extra[i + 1]] if takes_value else []
        if name in out and name.startswith("--") and name not in REPEATABLE:
            at = out.index(name)
            had_value = at + 1 < len(out) and not out[at + 1].startswith("--")
            out[at : at + 1 + had_value] = [name, *value]
        else:
            out += [name, *value]
        i += 1 + len(value)
    return out
