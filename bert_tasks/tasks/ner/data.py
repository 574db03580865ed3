"""Reads token classification data into ``datasets.Dataset`` splits: ``idx``, ``tokens``, ``tags`` (label ids), ``line``.

Three sources give the same result: CoNLL-style files (a word and its tag per line, whitespace-separated, the tag
in the last column, blank lines between sentences, ``-DOCSTART-`` lines skipped, the same number of columns on
every line), JSON Lines (``tokens`` and ``tags`` or ``ner_tags``: tag names, or integer ids that ``--labels``
names), and a Hub dataset with ``tokens`` and ``ner_tags`` (ClassLabel names read).

The tag set comes from the training tags (``O`` first, then by type and B/I/E/S) or from ``--labels``; the
scheme (IO, BIO, IOB1, BIOES) is found in the training tags or given, and every tag of every file must fit it.
An ``I-X`` after ``O`` or after another type is accepted: it starts an entity (conlleval's rule), when training,
scoring and predicting alike. Bad input is one line naming the file, the line and the reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets

from ...checkpoint.hub import require_hub
from ...errors import BertTasksError, shown
from ...io import input_problem
from .config import NerDataConfig

DOCSTART = "-DOCSTART-"
TAG = re.compile(r"^([BIES])-(.+)$")
#: the prefixes each scheme allows
PREFIXES = {"IO": "I", "BIO": "BI", "IOB1": "BI", "BIOES": "BIES"}
PREFIX_ORDER = "BIES"
#: headers of a sentence classification file: a text column and a label column
TEXT_HEADERS = ("text", "sentence", "sentence1", "text_a", "review", "content")
SENTENCE_FILE_HINT = "this looks like a sentence classification file (text, label); use finetune classify"


@dataclass
class RawSplit:
    """Sentences as read: words, tags (names, or ints from JSON Lines / the Hub), and where each one starts."""

    source: str
    tokens: list[list[str]] = field(default_factory=list)
    tags: list[list[Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    #: the Hub's ClassLabel names, when the tags are its ids
    names: list[str] | None = None
    #: one word per line (CoNLL): word j of a sentence is j lines below its first
    word_lines: bool = False

    def where(self, i: int, word: int = 0) -> dict[str, Any]:
        """File and record of sentence ``i`` (CoNLL: of its word ``word``)."""
        if not self.lines[i]:
            return {"file": self.source, "record": f"sentence {i}"}
        return {"file": self.source, "record": f"line {self.lines[i] + (word if self.word_lines else 0)}"}


def read_text(path: Path) -> str:
    problem = input_problem(path)
    if problem is not None:
        raise BertTasksError(problem, file=path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BertTasksError("not UTF-8 text", file=path, record=f"line {line}") from None


def read_file(path: str | Path) -> RawSplit:
    """One user file: JSON Lines by its suffix (.json, .jsonl), else CoNLL columns; a CSV is refused."""
    path = Path(path)
    text = read_text(path)
    lines = text.split("\n")
    first = next(((n, line) for n, line in enumerate(lines, start=1) if line.strip()), None)
    if first is None:
        raise BertTasksError("file is empty", file=path, record="line 1")
    if path.suffix.lower() in (".json", ".jsonl"):
        return _read_jsonl(path, lines)
    if looks_like_sentences(re.split(r"[\t,]", first[1].strip())):
        raise BertTasksError(SENTENCE_FILE_HINT, file=path, record=f"line {first[0]}")
    if path.suffix.lower() == ".csv":
        raise BertTasksError("a CSV file is no token classification format; give CoNLL columns or JSON Lines",
                             file=path, record=f"line {first[0]}")
    return _read_conll(path, lines)


def looks_like_sentences(header: list[str]) -> bool:
    names = [h.strip().strip('"').lower() for h in header]
    return len(names) >= 2 and names[0] in TEXT_HEADERS and names[-1] in ("label", "labels")


def _read_conll(path: Path, lines: list[str]) -> RawSplit:
    split = RawSplit(str(path), word_lines=True)
    width: tuple[int, int] | None = None  # (columns, the line that set them)
    words: list[str] = []
    tags: list[str] = []
    for n, line in enumerate([*lines, ""], start=1):
        fields = line.split()
        if fields and fields[0] == DOCSTART:
            fields = []
        if not fields:
            if words:
                split.tokens.append(words)
                split.tags.append(tags)
                words, tags = [], []
            continue
        if len(fields) < 2:
            raise BertTasksError("expected a word and its tag (whitespace-separated), got one column", file=path,
                                 record=f"line {n}")
        if width is None:
            width = (len(fields), n)
        elif len(fields) != width[0]:
            raise BertTasksError(f"{len(fields)} columns, but line {width[1]} has {width[0]}: every line needs the "
                                 "same columns", file=path, record=f"line {n}")
        if not words:
            split.lines.append(n)
        words.append(fields[0])
        tags.append(fields[-1])
    if not split.tokens:
        raise BertTasksError("no sentences (only -DOCSTART- lines)", file=path, record="line 1")
    return split


def _read_jsonl(path: Path, lines: list[str]) -> RawSplit:
    split = RawSplit(str(path))
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = {"file": path, "record": f"line {n}"}
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BertTasksError(f"not a JSON object per line: {exc.msg}", **where) from None
        except RecursionError:
            raise BertTasksError("JSON nested too deeply", **where) from None
        if not isinstance(record, dict):
            raise BertTasksError("not a JSON object per line", **where)
        key = "tags" if "tags" in record else "ner_tags"
        if "tokens" not in record or key not in record:
            if "label" in record and any(k.lower() in TEXT_HEADERS for k in record):
                raise BertTasksError(SENTENCE_FILE_HINT, **where)
            raise BertTasksError("expected keys tokens and tags (or ner_tags)", **where)
        tokens, tags = record["tokens"], record[key]
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise BertTasksError(f"tokens is not a list of strings: {shown(tokens)}", **where)
        if not isinstance(tags, list):
            raise BertTasksError(f"{key} is not a list: {shown(tags)}", **where)
        if not tokens:
            raise BertTasksError("a sentence with no words (tokens is empty)", **where)
        if len(tokens) != len(tags):
            raise BertTasksError(f"{len(tokens)} tokens but {len(tags)} {key}: one tag per word", **where)
        for i, token in enumerate(tokens):
            if not token.strip():
                raise BertTasksError(f"token {i} is {'empty' if not token else 'whitespace only'}: {token!r}", **where)
        split.tokens.append(tokens)
        split.tags.append(tags)
        split.lines.append(n)
    return split


# --- the tag set and the scheme ------------------------------------------------------------------


def tag_sort_key(tag: str) -> tuple:
    """O first, then by entity type, then B, I, E, S."""
    match = TAG.match(tag)
    return (0, "", 0) if tag == "O" else (1, match.group(2), PREFIX_ORDER.index(match.group(1))) if match else (2, tag, 0)


def infer_labels(split: RawSplit) -> list[str]:
    return sorted({tag for sentence in split.tags for tag in sentence}, key=tag_sort_key)


def detect_scheme(split: RawSplit) -> str:
    """BIOES if any E-/S- tag, IO if only I-, IOB1 if every B-X follows a tag of type X, else BIO."""
    prefixes = {tag[0] for sentence in split.tags for tag in sentence if TAG.match(tag)}
    if prefixes & set("ES"):
        return "BIOES"
    if "B" not in prefixes:
        return "IO"
    iob1 = all(TAG.match(prev) and TAG.match(prev).group(2) == tag[2:]
               for sentence in split.tags for prev, tag in zip(["O", *sentence], sentence) if tag.startswith("B-"))
    return "IOB1" if iob1 else "BIO"


def check_tag(tag: str, scheme: str, where: dict[str, Any]) -> None:
    if tag == "O":
        return
    match = TAG.match(tag)
    allowed = PREFIXES[scheme]
    if match is None or match.group(1) not in allowed:
        forms = ", ".join(f"{p}-TYPE" for p in allowed)
        raise BertTasksError(f"tag {shown(tag)} does not fit the {scheme} scheme (O, {forms})", **where)


def tag_names(split: RawSplit, labels: list[str] | None) -> RawSplit:
    """Integer tags (JSON Lines, the Hub) turned to names: the Hub's ClassLabel names, else ``labels``."""
    names = split.names or labels
    for i, sentence in enumerate(split.tags):
        if all(isinstance(t, str) for t in sentence):
            continue
        for tag in sentence:
            if isinstance(tag, bool) or not isinstance(tag, (int, str)):
                raise BertTasksError(f"tag {shown(tag)} is neither a tag name nor an integer id", **split.where(i))
            if isinstance(tag, int) and names is None:
                raise BertTasksError(f"integer tag ids ({tag}) need their names: pass --labels O,B-PER,... in id order",
                                     **split.where(i))
            if isinstance(tag, int) and not 0 <= tag < len(names):
                raise BertTasksError(f"tag id {tag} is out of range for the {len(names)} labels (0-{len(names) - 1})",
                                     **split.where(i))
        split.tags[i] = [names[t] if isinstance(t, int) else t for t in sentence]
    return split


def to_dataset(split: RawSplit, labels: list[str], scheme: str, what: str) -> datasets.Dataset:
    """Check every tag against the scheme and the tag set; ids in a Dataset."""
    ids = {name: i for i, name in enumerate(labels)}
    shown_labels = ", ".join(labels) if len(labels) <= 12 else ", ".join(labels[:12]) + ", ..."
    columns: dict[str, list] = {"idx": [], "tokens": [], "tags": [], "line": []}
    for i, (tokens, tags) in enumerate(zip(split.tokens, split.tags)):
        for j, tag in enumerate(tags):
            check_tag(tag, scheme, split.where(i, j))
            if tag not in ids:
                raise BertTasksError(f"tag {shown(tag)} is not among the {what} ({shown_labels})", **split.where(i, j))
        columns["idx"].append(i)
        columns["tokens"].append(list(tokens))
        columns["tags"].append([ids[t] for t in tags])
        columns["line"].append(split.lines[i])
    features = datasets.Features({"idx": datasets.Value("int64"), "tokens": datasets.Sequence(datasets.Value("string")),
                                  "tags": datasets.Sequence(datasets.Value("int64")), "line": datasets.Value("int64")})
    return datasets.Dataset.from_dict(columns, features=features)


@dataclass
class NerData:
    splits: dict[str, datasets.Dataset]
    labels: list[str]
    scheme: str


def load_ner_data(cfg: NerDataConfig, *, labels: list[str] | None = None, scheme: str | None = None,
                  splits: tuple[str, ...] = ("train", "validation")) -> NerData:
    """Read ``splits``; the tag set is ``labels`` (a trained model's), ``--labels``, the Hub's names or the training
    tags, and the scheme ``scheme``, ``--tag-scheme`` or the training tags'."""
    raw = _hub_splits(cfg, splits) if cfg.dataset else {s: read_file(p) for s, p in cfg.user_files.items() if s in splits}
    given = labels or cfg.label_list()
    hub_names = next((r.names for r in raw.values() if r.names), None)
    for split in raw.values():
        tag_names(split, given)
    if "train" in splits and "train" not in raw:
        raise BertTasksError("no training data: give --train-file (or --dataset)")
    first = raw.get("train") or next(iter(raw.values()), None)
    if first is None:
        raise BertTasksError("no validation data: give --validation-file (or --dataset)")
    if labels and not (scheme or cfg.scheme):  # a trained model's tags say its scheme (IOB1 reads as BIO)
        scheme = detect_scheme(RawSplit("", tags=[[tag] for tag in labels]))
    scheme = scheme or cfg.scheme or detect_scheme(first)
    tag_set = given or hub_names or infer_labels(first)
    what = "model's labels" if labels else "--labels" if cfg.labels else "Hub dataset's labels" if hub_names \
        else "training tags"
    for tag in tag_set if given or hub_names else ():  # inferred tags are checked where they stand, below
        check_tag(tag, scheme, {"record": "key labels"} if given else {"file": first.source})
    if len(tag_set) < 2:
        raise BertTasksError(f"only one tag ({tag_set[0]}) in the {what}: nothing to tell apart; a token classifier "
                             "needs at least two", file=None if given else first.source)
    limits = {"train": cfg.max_train_samples, "validation": cfg.max_eval_samples}
    out = {}
    for name, split in raw.items():
        data = to_dataset(split, tag_set, scheme, what)
        out[name] = data if limits[name] is None or limits[name] >= len(data) else data.select(range(limits[name]))
    return NerData(out, tag_set, scheme)


def _hub_splits(cfg: NerDataConfig, splits: tuple[str, ...]) -> dict[str, RawSplit]:
    where = f"{cfg.dataset}" + (f" ({cfg.dataset_config})" if cfg.dataset_config else "")
    require_hub(f"the Hub dataset {where}")
    try:
        loaded = datasets.load_dataset(cfg.dataset, cfg.dataset_config)
    except (OSError, ValueError) as exc:  # offline with no cache, an unknown name
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BertTasksError(f"cannot load the Hub dataset {where}: {shown(reason)}; offline, give --train-file and "
                             "--validation-file") from None
    out = {}
    for name in splits:
        if name not in loaded:
            continue
        ds = loaded[name]
        if "tokens" not in ds.column_names or "ner_tags" not in ds.column_names:
            raise BertTasksError(f"the {name} split has no tokens and ner_tags columns ({', '.join(ds.column_names)})",
                                 file=where)
        inner = getattr(ds.features["ner_tags"], "feature", None)
        names = list(inner.names) if isinstance(inner, datasets.ClassLabel) else None
        split = RawSplit(f"{where}/{name}", names=names)
        for i, (tokens, tags) in enumerate(zip(ds["tokens"], ds["ner_tags"])):
            if tokens:  # the Hub's conll2003 keeps a few empty sentences (its -DOCSTART- lines)
                split.tokens.append(list(tokens))
                split.tags.append(list(tags))
                split.lines.append(0)
        out[name] = split
    return out
