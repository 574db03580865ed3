"""Every `bert-tasks` command line of the README runs as written, on tiny data laid out where it says.

Optional parts in brackets (``[--json]``) and trailing comments are dropped; nothing is added. The
mlm-tiny recipe trains for its full 1,000 steps as written, which takes minutes, so that line runs
as written in the slow suite and with ``--max-steps 5`` in the default one.
"""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

import pytest

from bert_tasks.cli import main
from cli_args import with_options

README = Path(__file__).resolve().parents[1] / "README.md"
WORDS = "good bad fine dull great awful film plot actors story music long short".split()
SLOW_AS_WRITTEN = ("--recipe mlm-tiny",)


def readme_commands() -> list[str]:
    text = re.sub(r"\\\n\s*", "", README.read_text())  # a command continued with a backslash is one line
    lines = [line for line in text.splitlines() if line.startswith("bert-tasks ")]
    return [re.sub(r"\s+\[[^\]]*\]", "", line.split("  #")[0]).strip() for line in lines]


def write_tiny_data(root: Path) -> None:
    rng = random.Random(0)

    def sentences(n: int) -> list[str]:
        return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(n)]

    for folder in ("glue/SST-2", "GLUE/SST-2", "GLUE_ROOT/SST-2"):
        path = root / folder
        path.mkdir(parents=True)
        for name in ("train.tsv", "dev.tsv"):
            (path / name).write_text("sentence\tlabel\n" + "".join(f"{s}\t{int('good' in s)}\n" for s in sentences(16)))
        (path / "test.tsv").write_text("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, s in enumerate(sentences(4))))
    mnli = root / "GLUE_ROOT/MNLI"
    mnli.mkdir(parents=True)
    header = ("index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2")
    labels = ("entailment", "neutral", "contradiction")

    def pairs(n: int, labeled: bool = True) -> str:
        return "".join(f"{i}\t1\t1\tg\tx\tx\tx\tx\t{a}\t{b}" + (f"\t{rng.choice(labels)}" if labeled else "") + "\n"
                       for i, (a, b) in enumerate(zip(sentences(n), sentences(n))))

    (mnli / "train.tsv").write_text(header + "\tgold_label\n" + pairs(16))
    for name in ("dev_matched.tsv", "dev_mismatched.tsv"):
        (mnli / name).write_text(header + "\tgold_label\n" + pairs(8))
    for name in ("test_matched.tsv", "test_mismatched.tsv"):
        (mnli / name).write_text(header + "\n" + pairs(4, labeled=False))
    mrpc, rte = root / "glue/MRPC", root / "glue/RTE"
    mrpc.mkdir(parents=True)
    rte.mkdir(parents=True)
    for name in ("train.tsv", "dev.tsv"):
        (mrpc / name).write_text("Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n" + "".join(
            f"{i % 2}\t{i}\t{i + 100}\t{a}\t{b}\n" for i, (a, b) in enumerate(zip(sentences(16), sentences(16)))))
        (rte / name).write_text("index\tsentence1\tsentence2\tlabel\n" + "".join(
            f"{i}\t{a}\t{b}\t{('entailment', 'not_entailment')[i % 2]}\n" for i, (a, b) in enumerate(zip(sentences(16), sentences(16)))))
    from bert_tasks.tasks.squad.synthetic import write_synthetic_squad

    write_synthetic_squad(root / "train.json", n_articles=1, seed=1, version_2=False)
    write_synthetic_squad(root / "dev.json", n_articles=1, seed=2, version_2=False)
    (root / "corpus.txt").write_text("\n".join(sentences(300)) + "\n")
    reviews, tickets = root / "reviews", root / "tickets"
    reviews.mkdir()
    tickets.mkdir()
    for name in ("train", "dev"):  # "Your own data": labels by name, and a multi-label file with two text columns
        (reviews / f"{name}.csv").write_text("text,label\n" + "".join(
            f"{s},{('pos', 'neg', 'neu')[i % 3]}\n" for i, s in enumerate(sentences(18))))
        (tickets / f"{name}.jsonl").write_text("".join(
            json.dumps({"subject": a, "body": b, "topics": [w for w in ("film", "music") if w in a + b]}) + "\n"
            for a, b in zip(sentences(12), sentences(12))))
    names, places = ("Ada", "Alan", "Grace"), ("London", "Paris")
    for name, n in (("train.conll", 16), ("dev.conll", 8)):  # CoNLL columns: word and tag, blank lines between
        rows = [[(rng.choice(names), "B-PER"), ("went", "O"), ("to", "O"), (rng.choice(places), "B-LOC")] for _ in range(n)]
        (root / name).write_text("".join("".join(f"{w} {t}\n" for w, t in row) + "\n" for row in rows))
    # the Hub ids the README names, as tiny local folders of their model types (a local folder wins over the Hub)
    from toy import tiny_checkpoint

    tiny_checkpoint(root / "roberta-base", "roberta", positions=512)
    tiny_checkpoint(root / "microsoft" / "deberta-v3-small", "deberta-v2", positions=512)
    (root / "domain.txt").write_text("\n".join(sentences(100)) + "\n")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("readme")
    write_tiny_data(root)
    return root


def run_in(workspace: Path, argv: list[str]) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workspace)
        return main(argv)


COMMANDS = readme_commands()


def test_the_readme_has_commands_to_run():
    assert len(COMMANDS) >= 14 and any("--dry-run" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_runs(command, workspace):
    argv = shlex.split(command)[1:]
    if any(marker in command for marker in SLOW_AS_WRITTEN):  # as written in the slow suite, below
        argv = with_options(argv, "--max-steps", "5", "--output-dir", "runs/short")
    assert run_in(workspace, argv) == 0, command


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if any(m in c for m in SLOW_AS_WRITTEN)])
def test_readme_command_runs_as_written(command, tmp_path):
    write_tiny_data(tmp_path)
    assert run_in(tmp_path, shlex.split(command)[1:]) == 0, command
