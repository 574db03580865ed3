"""The built-in synthetic SQuAD set: deterministic, well-formed, varied, and with real no-answer cases."""

from __future__ import annotations

import json
import re

from bert_tasks.tasks.squad.data import load_squad_examples
from bert_tasks.tasks.squad.synthetic import make_synthetic_squad, write_synthetic_splits


def questions(doc):
    return [(p["context"], q) for a in doc["data"] for p in a["paragraphs"] for q in p["qas"]]


def test_same_seed_same_data_other_seed_other_data():
    assert make_synthetic_squad(3, seed=5, version_2=True) == make_synthetic_squad(3, seed=5, version_2=True)
    assert make_synthetic_squad(3, seed=5, version_2=True) != make_synthetic_squad(3, seed=6, version_2=True)
    assert len(make_synthetic_squad(7, seed=0, version_2=False)["data"]) == 7


def test_every_answer_is_a_span_and_the_loader_accepts_both_versions(tmp_path):
    paths = write_synthetic_splits(tmp_path, train_articles=6, validation_articles=3, seed=1, version_2=True)
    train = load_squad_examples(paths["train"], version_2=True)  # the loader checks every answer_start
    assert len(train) > 6 * 2 * 4
    v1 = make_synthetic_squad(5, seed=2, version_2=False)
    (tmp_path / "v1.json").write_text(json.dumps(v1))
    v1_examples = load_squad_examples(tmp_path / "v1.json", version_2=False)
    assert all(a["text"] for a in v1_examples["answers"])


def test_v2_unanswerable_questions_are_a_sizeable_minority_and_really_unanswerable():
    items = questions(make_synthetic_squad(20, seed=3, version_2=True))
    impossible = [(c, q) for c, q in items if q["is_impossible"]]
    assert 0.2 < len(impossible) / len(items) < 0.45
    # most name someone or something the paragraph never mentions
    strangers = 0
    for context, q in impossible:
        names = re.findall(r"[A-Z][a-z]+(?: [A-Z][a-z]+)+", q["question"])
        strangers += any(name not in context for name in names)
    assert strangers > len(impossible) / 2


def test_questions_vary_in_form_and_answers_in_kind():
    items = questions(make_synthetic_squad(20, seed=4, version_2=False))
    openings = {" ".join(q["question"].split()[:2]) for _, q in items}
    assert len(openings) >= 10
    answers = [q["answers"][0]["text"] for _, q in items]
    assert any(a.isdigit() and len(a) == 4 for a in answers)  # years
    assert any(" " in a and a.istitle() for a in answers)  # names
    assert any(a.islower() for a in answers)  # fields and products
    assert len(set(answers)) > len(answers) / 2


def test_validation_split_uses_other_names_than_training(tmp_path):
    paths = write_synthetic_splits(tmp_path, train_articles=10, validation_articles=5, seed=0)
    train, validation = (json.loads(p.read_text()) for p in (paths["train"], paths["validation"]))
    train_titles = {a["title"] for a in train["data"]}
    assert not train_titles & {a["title"] for a in validation["data"]}
