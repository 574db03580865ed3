"""`python -m bert_tasks`: the same as the `bert-tasks` command."""

from .cli import entry_point

if __name__ == "__main__":
    entry_point()
