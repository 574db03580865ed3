"""A small invented SQuAD-format dataset for the offline quickstart.

Each paragraph profiles an invented person and the organisation they founded: birthplace,
birth year, studies, founding year, products, staff size and headquarters, each stated
by one of several sentence templates, in shuffled order, next to distractor places and
years. Questions ask for one fact each, phrased in several ways; the answer is the span
that states it. With ``version_2`` about a third of the questions cannot be answered:
they name a person or organisation that is not in the paragraph, or ask for a fact the
paragraph leaves out.

Every name is assembled from syllables, so no text comes from a real dataset, and the
output depends only on the seed. The question-to-answer patterns are consistent while
the surface forms vary, which a small BERT learns in a few CPU minutes.
"""

from __future__ import annotations

import random
import string
from pathlib import Path
from typing import Any

from ...io import write_json

_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st", "tr", "th", "sh", "gl"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "ei", "ou", "ia"]
_CODAS = ["", "", "n", "r", "l", "s", "th", "nd", "rk", "x"]
_CITY_ENDINGS = ["ford", "haven", "burg", "mouth", "dale", "wick", "stead", "moor", "port", "ton"]
_CITY_PREFIXES = ["Port ", "New ", "Upper ", "East ", "Lower ", "Saint "]
_ORG_KINDS = ["Dynamics", "Institute", "Foundry", "Collective", "Works", "Laboratories", "Trading Company", "Press", "Instruments", "Cooperative"]
_FIELDS = ["chemistry", "marine biology", "economics", "architecture", "mechanical engineering", "philosophy", "astronomy", "music theory", "geology", "mathematics", "medicine", "linguistics"]
_PRODUCTS = ["pocket watches", "bicycles", "telescopes", "ceramic tiles", "sailcloth", "printing presses", "wind turbines", "violins", "maps", "glass lenses", "farm tools", "typewriters"]
_PRONOUNS = {"he": ("He", "his"), "she": ("She", "her")}

# Sentence templates per fact; ``{answer}`` marks the field each fact's questions ask for.
_FACTS: dict[str, list[str]] = {
    "born": [
        "{person} was born in {birthplace} in {birth_year}.",
        "Born in {birthplace} in {birth_year}, {person} grew up close to the harbour.",
        "{person} was born in {birth_year} in the town of {birthplace}.",
        "The child who became known as {person} was born in {birthplace} in {birth_year}.",
    ],
    "studied": [
        "{Pronoun} studied {field} at the University of {study_city}.",
        "After studying {field} in {study_city}, {last} returned home.",
        "{last} trained in {field} at a college in {study_city}.",
    ],
    "founded": [
        "In {founding_year}, {person} founded {org}, a company that makes {product}.",
        "{person} established {org} in {founding_year} to produce {product}.",
        "{org} was founded by {person} in {founding_year} and makes {product}.",
        "In {founding_year} {person} set up {org}, which has built {product} ever since.",
    ],
    "staff": [
        "Today {org} employs {staff} people.",
        "The company has a staff of about {staff}.",
        "{org} now has {staff} employees.",
        "By {later_year} the firm employed {staff} workers.",
    ],
    "headquarters": [
        "Its headquarters are in {headquarters}.",
        "{org} is based in {headquarters}.",
        "The firm moved its main office to {headquarters} in {later_year}.",
        "{org} keeps its head office in {headquarters}, not far from {study_city}.",
    ],
}

# Question templates: (fact sentence, field holding the answer, phrasings).
_QUESTIONS: list[tuple[str, str, list[str]]] = [
    ("born", "birthplace", ["Where was {person} born?", "In which town was {person} born?", "What is the birthplace of {person}?", "{person} was born in which place?"]),
    ("born", "birth_year", ["When was {person} born?", "In what year was {person} born?", "What year was {person} born in?", "{person} was born in which year?"]),
    ("studied", "field", ["What did {person} study?", "Which subject did {person} study?", "What field was {person} trained in?"]),
    ("founded", "person", ["Who founded {org}?", "Who established {org}?", "{org} was founded by whom?", "Who is the founder of {org}?"]),
    ("founded", "founding_year", ["When was {org} founded?", "In which year was {org} established?", "What year did {person} found {org}?", "When did {person} set up {org}?"]),
    ("founded", "product", ["What does {org} make?", "What does {org} produce?", "What kind of products does {org} build?"]),
    ("staff", "staff", ["How many people does {org} employ?", "How many employees does {org} have?", "How large is the staff of {org}?", "How many workers does {org} have?"]),
    ("headquarters", "headquarters", ["Where is {org} based?", "Where are the headquarters of {org}?", "In which city is {org} headquartered?", "Where is the head office of {org}?"]),
]


class _Names:
    """Invented proper names, never repeating within one dataset."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def _word(self, syllables: int) -> str:
        word = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables))
        return (word + self.rng.choice(_CODAS)).capitalize()

    def _fresh(self, make) -> str:
        while True:
            name = make()
            if name not in self.used:
                self.used.add(name)
                return name

    def person(self) -> tuple[str, str]:
        first, last = self._word(self.rng.randint(1, 2)), self._word(self.rng.randint(2, 3))
        return self._fresh(lambda: f"{first} {last}" if f"{first} {last}" not in self.used else f"{self._word(2)} {last}"), last

    def place(self) -> str:
        def make() -> str:
            base = self._word(self.rng.randint(1, 2))
            if len(base) < 5 or self.rng.random() < 0.4:
                base = base + self.rng.choice(_CITY_ENDINGS)
            return (self.rng.choice(_CITY_PREFIXES) if self.rng.random() < 0.2 else "") + base

        return self._fresh(make)

    def organisation(self) -> str:
        return self._fresh(lambda: f"{self._word(self.rng.randint(1, 2))} {self.rng.choice(_ORG_KINDS)}")


def _fill(template: str, values: dict[str, str], at: int) -> tuple[str, dict[str, tuple[int, int]]]:
    """Format ``template`` and say where each field landed, counting from character ``at``."""
    text, spans = [], {}
    position = at
    for literal, field_name, _, _ in string.Formatter().parse(template):
        text.append(literal)
        position += len(literal)
        if field_name is not None:
            value = values[field_name]
            spans.setdefault(field_name, (position, position + len(value)))
            text.append(value)
            position += len(value)
    return "".join(text), spans


def _profile(rng: random.Random, names: _Names) -> dict[str, str]:
    person, last = names.person()
    pronoun = rng.choice(list(_PRONOUNS))
    birth_year = rng.randint(1780, 1990)
    staff = rng.choice([rng.randint(12, 950), rng.randint(1000, 90000)])
    return {
        "person": person,
        "last": last,
        "Pronoun": _PRONOUNS[pronoun][0],
        "birthplace": names.place(),
        "birth_year": str(birth_year),
        "field": rng.choice(_FIELDS),
        "study_city": names.place(),
        "org": names.organisation(),
        "founding_year": str(birth_year + rng.randint(22, 45)),
        "later_year": str(birth_year + rng.randint(50, 70)),
        "product": rng.choice(_PRODUCTS),
        "staff": f"{staff:,}" if staff >= 1000 and rng.random() < 0.6 else str(staff),
        "headquarters": names.place(),
    }


def _paragraph(rng: random.Random, names: _Names, qid_prefix: str, version_2: bool) -> tuple[dict[str, Any], str]:
    """One paragraph with its questions, and the name of the person it profiles."""
    values = _profile(rng, names)
    facts = ["born", "studied", "founded", "staff", "headquarters"]
    # v2 paragraphs may leave out one optional fact, so "not stated" is a real no-answer case
    omitted = rng.choice(["studied", "staff", "headquarters"]) if version_2 and rng.random() < 0.5 else None
    stated = [f for f in facts if f != omitted]
    order = ["born"] + rng.sample([f for f in stated if f != "born"], len(stated) - 1)
    context, spans_of_fact = "", {}
    for fact in order:
        if context:
            context += " "
        sentence, spans = _fill(rng.choice(_FACTS[fact]), values, len(context))
        context += sentence
        spans_of_fact[fact] = spans

    qas = []
    asked = [q for q in _QUESTIONS if q[0] in spans_of_fact and q[1] in spans_of_fact[q[0]]]
    for fact, field_name, phrasings in rng.sample(asked, min(len(asked), rng.randint(4, 6))):
        start, end = spans_of_fact[fact][field_name]
        question = _fill(rng.choice(phrasings), values, 0)[0]
        qas.append({"id": f"{qid_prefix}-{len(qas)}", "question": question, "answers": [{"text": context[start:end], "answer_start": start}]})
        if version_2:
            qas[-1]["is_impossible"] = False
    if version_2:
        for _ in range(max(1, len(qas) // 2)):
            qas.append(_unanswerable(rng, names, values, omitted, f"{qid_prefix}-{len(qas)}"))
    rng.shuffle(qas)
    return {"context": context, "qas": qas}, values["person"]


def _unanswerable(rng: random.Random, names: _Names, values: dict[str, str], omitted: str | None, qid: str) -> dict[str, Any]:
    if omitted is not None and rng.random() < 0.4:
        phrasings = [p for fact, _, ps in _QUESTIONS if fact == omitted for p in ps]
        question = _fill(rng.choice(phrasings), values, 0)[0]
    else:
        stranger = dict(values, person=names.person()[0], org=names.organisation())
        question = _fill(rng.choice([p for _, _, ps in _QUESTIONS for p in ps]), stranger, 0)[0]
    return {"id": qid, "question": question, "answers": [], "is_impossible": True}


def make_synthetic_squad(n_articles: int, seed: int, version_2: bool) -> dict[str, Any]:
    """An official-format SQuAD dict (``{"version", "data"}``) of ``n_articles`` invented articles."""
    rng = random.Random(seed)
    names = _Names(rng)
    data = []
    for a in range(n_articles):
        profiles = [_paragraph(rng, names, f"syn{seed}-{a}-{p}", version_2) for p in range(rng.randint(2, 4))]
        title = " and ".join(person for _, person in profiles[:2])
        data.append({"title": f"Founders: {title}", "paragraphs": [paragraph for paragraph, _ in profiles]})
    return {"version": "v2.0" if version_2 else "1.1", "data": data}


def write_synthetic_squad(path: str | Path, *, n_articles: int, seed: int, version_2: bool) -> Path:
    """Write :func:`make_synthetic_squad` as official SQuAD JSON."""
    path = Path(path)
    write_json(path, make_synthetic_squad(n_articles, seed, version_2))
    return path


def write_synthetic_splits(
    out_dir: str | Path, *, train_articles: int = 120, validation_articles: int = 20, seed: int = 0, version_2: bool = False
) -> dict[str, Path]:
    """Train and validation files from different seeds, so validation names are unseen in training."""
    out_dir = Path(out_dir)
    suffix = "v2" if version_2 else "v1"
    return {
        "train": write_synthetic_squad(out_dir / f"synthetic-{suffix}-train.json", n_articles=train_articles, seed=2 * seed, version_2=version_2),
        "validation": write_synthetic_squad(
            out_dir / f"synthetic-{suffix}-validation.json", n_articles=validation_articles, seed=2 * seed + 1, version_2=version_2
        ),
    }
