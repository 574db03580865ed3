"""Runs the real `bert-tasks` entry point, stalled in one phase so a test can Ctrl-C it there.

    python interrupt_worker.py PHASE -- bert-tasks arguments...

PHASE is ``data`` (reading the GLUE files), ``model`` (loading the checkpoint), ``stubborn`` (reading
data in code that swallows KeyboardInterrupt, as a long native call would ignore it), or ``none``.
The stall prints ``stalled in PHASE`` to stderr and sleeps; everything else is the unmodified CLI.
"""

from __future__ import annotations

import sys
import time

import bert_tasks.checkpoint.load as checkpoint
import bert_tasks.tasks.glue.data as glue_data


def stall(phase: str, real, *, stubborn: bool = False):
    def stalled(*args, **kwargs):
        deadline, said = time.monotonic() + 60, False
        while True:
            try:  # the line and the whole wait inside the try: the test's Ctrl-C follows the line at once,
                # and can land on any line of the wait, not only in sleep
                if not said:
                    said = True
                    print(f"stalled in {phase}", file=sys.stderr, flush=True)
                while time.monotonic() < deadline:
                    time.sleep(0.01)
                break
            except KeyboardInterrupt:
                if not stubborn:
                    raise
        return real(*args, **kwargs)

    return stalled


def main() -> None:
    phase, rest = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    # patched before the CLI is imported, so every module that imports these names gets the stalled ones
    if phase in ("data", "stubborn"):
        glue_data.load_glue_splits = stall(phase, glue_data.load_glue_splits, stubborn=phase == "stubborn")
    elif phase == "model":
        checkpoint.load_pretrained = stall(phase, checkpoint.load_pretrained)
    from bert_tasks.cli import entry_point, interrupts

    interrupts.GRACE_SECONDS = 2.0  # the watchdog's patience, shortened so the stubborn case stays quick
    sys.argv = ["bert-tasks", *rest]
    entry_point()


if __name__ == "__main__":
    main()
