"""Loaders for Search-R1's data formats, and the corpus + questions bundle the env uses.

Formats (as Search-R1 / FlashRAG ship them):

* corpus JSONL: one JSON object per line with ``id`` and ``contents`` = ``"title\\ntext"``
  (the first line of ``contents`` is the title). Objects with ``title`` and ``text``
  fields instead of ``contents`` are accepted too.
* QA JSONL or parquet: ``question``, ``golden_answers`` (a list or a string), optional
  ``data_source`` and ``id``. Search-R1's processed files also carry the answers in
  ``reward_model.ground_truth.target``, where ``reward_model`` is an object or that object
  as a JSON string (as some exports write it); that is used when ``golden_answers`` is absent.
  Parquet needs ``pyarrow`` (``pip install pyarrow``).
* ``data_source`` (per question, reported in ``info`` and per-source metrics as in Search-R1):
  the record's own ``data_source`` field when present, else the name of the folder holding
  the QA file (Search-R1 keeps one folder per data set, e.g. ``nq_search/train.parquet``
  -> ``nq_search``).

A data directory (argument ``data_dir`` or the ``SEARCHQA_DATA`` environment variable)
holds ``corpus.jsonl`` and one QA file per split: ``train.jsonl`` / ``train.parquet``,
``test.jsonl`` / ``test.parquet``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from t2po_gym.envs.searchqa.records import QAItem
from t2po_gym.search.base import Document, corpus_fingerprint

__all__ = [
    "QAData",
    "DataFormatError",
    "load_corpus_jsonl",
    "load_qa",
    "load_data_dir",
    "find_qa_file",
    "DATA_ENV_VAR",
]

DATA_ENV_VAR = "SEARCHQA_DATA"
_QA_SUFFIXES = (".jsonl", ".json", ".parquet")


class DataFormatError(ValueError):
    """A data file is missing, of an unknown format, or has a malformed record."""


@dataclass
class QAData:
    """A corpus with question splits: what a :class:`~t2po_gym.envs.searchqa.env.SearchQAEnv` needs.

    Attributes:
        documents: the passages (may be empty when a remote retriever serves the corpus).
        splits: split name -> questions.
        source: a short description (file paths, or the world config).
    """

    documents: list[Document]
    splits: dict[str, list[QAItem]]
    source: str = ""

    @cached_property
    def fingerprint(self) -> str:
        return corpus_fingerprint(self.documents)

    @cached_property
    def doc_by_id(self) -> dict[str, Document]:
        return {d.doc_id: d for d in self.documents}

    def questions(self, split: str) -> list[QAItem]:
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}; this data has {sorted(self.splits)}")
        qs = self.splits[split]
        if not qs:
            raise ValueError(f"split {split!r} of {self.source} has no questions")
        return qs


def _bad(path: Path, line: int, why: str) -> DataFormatError:
    return DataFormatError(f"{path}:{line}: {why}")


def _iter_jsonl(path: Path):
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    with path.open("r", encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise _bad(path, i, f"not valid JSON ({e.msg} at column {e.colno}); "
                                    "fix or delete this line") from None
            if not isinstance(obj, dict):
                raise _bad(path, i, f"expected a JSON object, got {type(obj).__name__}")
            yield i, obj


def load_corpus_jsonl(path: str | os.PathLike) -> list[Document]:
    """Read a Search-R1 corpus JSONL file (``id``, ``contents`` = ``"title\\ntext"``).

    Raises :class:`DataFormatError` naming the file and line of the first bad record.
    """
    path = Path(path)
    if path.suffix not in (".jsonl", ".json"):
        raise DataFormatError(
            f"{path}: unknown corpus format {path.suffix!r}; expected a .jsonl file with "
            "'id' and 'contents' fields")
    docs: list[Document] = []
    seen: set[str] = set()
    for i, obj in _iter_jsonl(path):
        doc_id = obj.get("id", obj.get("docid"))
        if doc_id is None:
            raise _bad(path, i, "missing field 'id'")
        doc_id = str(doc_id)
        if doc_id in seen:
            raise _bad(path, i, f"duplicate id {doc_id!r}")
        seen.add(doc_id)
        if "contents" in obj:
            contents = obj["contents"]
            if not isinstance(contents, str):
                raise _bad(path, i, "field 'contents' must be a string")
            title, _, text = contents.partition("\n")
        elif "text" in obj:
            title, text = str(obj.get("title", "")), str(obj["text"])
        else:
            raise _bad(path, i, "missing field 'contents' (or 'title' + 'text')")
        docs.append(Document(doc_id, title, text))
    return docs


def _answers_of(path: Path, line: int, obj: dict[str, Any]) -> Any:
    if "golden_answers" in obj:
        return obj["golden_answers"]
    rm = obj.get("reward_model")
    if isinstance(rm, str):
        try:
            rm = json.loads(rm)  # JSON only: nothing in a data file runs code
        except json.JSONDecodeError as e:
            raise _bad(path, line, f"field 'reward_model' is a string but not JSON ({e.msg})") from None
    gt = rm.get("ground_truth") if isinstance(rm, dict) else None
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except json.JSONDecodeError:
            gt = {"target": [gt]}  # a bare answer string
    if isinstance(gt, dict) and "target" in gt:
        return gt["target"]
    return None


def _qa_item(path: Path, line: int, obj: dict[str, Any], index: int, default_source: str) -> QAItem:
    q = obj.get("question")
    if not isinstance(q, str) or not q.strip():
        raise _bad(path, line, "missing or empty field 'question'")
    answers = _answers_of(path, line, obj)
    if answers is None:
        raise _bad(path, line, "no answers: expected a 'golden_answers' field or "
                               "'reward_model' with 'ground_truth': {'target': [...]}")
    if isinstance(answers, str):
        answers = [answers]
    try:
        answers = [str(a) for a in list(answers)]
    except TypeError:
        raise _bad(path, line, "field 'golden_answers' must be a list of strings") from None
    if not answers:
        raise _bad(path, line, "field 'golden_answers' is empty")
    qid = str(obj.get("id", f"{path.stem}-{index}"))
    source = obj.get("data_source") or default_source
    return QAItem(qid, q.strip(), tuple(answers), str(source))


def load_qa(path: str | os.PathLike) -> list[QAItem]:
    """Read a QA file: ``.jsonl`` (one object per line) or ``.parquet`` (needs pyarrow).

    Raises :class:`DataFormatError` for an unknown extension or a bad record (naming the
    file and line, or row for parquet).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _QA_SUFFIXES:
        raise DataFormatError(
            f"{path}: unknown QA format {suffix or '(no extension)'!r}; use .jsonl or .parquet")
    if not path.is_file():
        raise DataFormatError(f"{path}: no such file")
    # data_source falls back to the folder name (Search-R1: one folder per data set)
    source = path.resolve().parent.name or path.stem
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataFormatError(f"{path}: reading parquet needs pyarrow: pip install pyarrow") from None
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several error types for broken files
            raise DataFormatError(f"{path}: not a readable parquet file ({e})") from None
        return [_qa_item(path, r, row, r - 1, source) for r, row in enumerate(rows, start=1)]
    return [_qa_item(path, i, obj, k, source) for k, (i, obj) in enumerate(_iter_jsonl(path))]


def find_qa_file(data_dir: Path, split: str) -> Path | None:
    """The QA file of ``split`` in ``data_dir`` (``{split}.jsonl`` or ``{split}.parquet``)."""
    for suffix in (".jsonl", ".parquet", ".json"):
        p = data_dir / f"{split}{suffix}"
        if p.is_file():
            return p
    return None


def load_data_dir(data_dir: str | os.PathLike, *, need_corpus: bool = True) -> QAData:
    """Load ``corpus.jsonl`` and every ``train``/``dev``/``test`` QA file of a directory."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataFormatError(f"{root}: not a directory (set {DATA_ENV_VAR} or data_dir to a folder "
                              "with corpus.jsonl and train/test QA files)")
    corpus = root / "corpus.jsonl"
    docs: list[Document] = []
    if corpus.is_file():
        docs = load_corpus_jsonl(corpus)
        if not docs and need_corpus:
            raise DataFormatError(f"{corpus}: the corpus file holds no passages")
    elif need_corpus:
        raise DataFormatError(f"{root}: no corpus.jsonl (needed unless a remote retriever serves the corpus)")
    splits = {}
    for split in ("train", "dev", "test"):
        p = find_qa_file(root, split)
        if p is not None:
            splits[split] = load_qa(p)
            if not splits[split]:
                raise DataFormatError(f"{p}: the QA file holds no questions")
    if not splits:
        raise DataFormatError(f"{root}: no QA file (train.jsonl, test.jsonl, train.parquet, ...)")
    return QAData(docs, splits, str(root))
