"""`python -m bert_tasks.cli`: the CLI, for launchers such as accelerate launch and torchrun."""

from . import entry_point

if __name__ == "__main__":
    entry_point()
