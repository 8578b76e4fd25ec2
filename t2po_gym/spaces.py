"""Text spaces over printable Unicode, cheap to create many times."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
from gymnasium import Space
from gymnasium.spaces import Text

__all__ = ["UnicodeText", "printable_charset"]


@lru_cache(maxsize=1)
def _shared_charset() -> tuple[frozenset, tuple, dict, str]:
    chars = [chr(i) for i in range(0x10000) if chr(i).isprintable()]
    chars += ["\n", "\t"]
    chars.sort()
    return (
        frozenset(chars),
        tuple(chars),
        {c: np.int32(i) for i, c in enumerate(chars)},
        "".join(chars),
    )


def printable_charset() -> frozenset:
    """Every printable character of the Basic Multilingual Plane, plus newline and tab."""
    return _shared_charset()[0]


class UnicodeText(Text):
    """A :class:`gymnasium.spaces.Text` whose charset is printable Unicode (BMP) plus ``\\n\\t``.

    Identical in behaviour to ``Text(min_length, max_length, charset=printable_charset())``,
    but the ~50k-character tables are built once per process and shared by every
    instance, so a vector of 16 envs does not hold 32 copies of them.
    """

    def __init__(self, max_length: int, *, min_length: int = 0, seed: Any = None):
        if min_length < 0 or min_length > max_length:
            raise ValueError(f"need 0 <= min_length <= max_length, got {min_length}, {max_length}")
        self.min_length = int(min_length)
        self.max_length = int(max_length)
        self._char_set, self._char_list, self._char_index, self._char_str = _shared_charset()
        Space.__init__(self, dtype=str, seed=seed)

    def contains(self, x: Any) -> bool:
        if not isinstance(x, str) or not (self.min_length <= len(x) <= self.max_length):
            return False
        charset = self._char_set
        return all(c in charset for c in x)

    def __repr__(self) -> str:
        return f"UnicodeText({self.min_length}, {self.max_length}, charset=printable BMP + \\n\\t)"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Text)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
            and self.character_set == other.character_set
        )

    __hash__ = None  # type: ignore[assignment]



# --- AsyncVectorEnv shared memory -------------------------------------------------------
# Gymnasium's AsyncVectorEnv reads its shared observation buffer once, at construction,
# and afterwards returns (a deep copy of) that object. That works for numpy views, but a
# tuple of str is frozen at construction: Text observations come back as padding
# (measured). UnicodeText's codec stores code points (-1 pads) and reads them back as a
# live view whose deep copy decodes the current buffer, so make_vec(..., "async") works
# with its default shared_memory=True and copy=True.
from collections.abc import Sequence as _Sequence  # noqa: E402

from gymnasium.vector.utils import shared_memory as _shm  # noqa: E402


class LiveTextBatch(_Sequence):
    """A read-only view of ``n`` texts in shared memory; ``copy.deepcopy`` gives a tuple."""

    def __init__(self, buffer, n: int, max_length: int):
        self._buffer, self._n, self._max = buffer, n, max_length

    def _rows(self) -> np.ndarray:
        return np.frombuffer(self._buffer.get_obj(), dtype=np.int32).reshape((self._n, self._max))

    @staticmethod
    def _decode(row: np.ndarray) -> str:
        stop = np.flatnonzero(row < 0)
        row = row[: stop[0]] if stop.size else row
        return "".join(map(chr, row.tolist()))

    def __getitem__(self, i):
        rows = self._rows()
        if isinstance(i, slice):
            return tuple(self._decode(r) for r in rows[i])
        return self._decode(rows[i])

    def __len__(self) -> int:
        return self._n

    def __deepcopy__(self, memo) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, _Sequence) else other)

    def __repr__(self) -> str:
        return f"LiveTextBatch({tuple(self)!r})"


@_shm.create_shared_memory.register(UnicodeText)
def _create_unicode_text_shm(space: UnicodeText, n: int = 1, ctx=None):
    import multiprocessing as mp

    ctx = ctx or mp
    buf = ctx.Array(np.dtype(np.int32).char, n * space.max_length)
    np.frombuffer(buf.get_obj(), dtype=np.int32)[:] = -1
    return buf


@_shm.read_from_shared_memory.register(UnicodeText)
def _read_unicode_text_shm(space: UnicodeText, shared_memory, n: int = 1) -> LiveTextBatch:
    return LiveTextBatch(shared_memory, n, space.max_length)


@_shm.write_to_shared_memory.register(UnicodeText)
def _write_unicode_text_shm(space: UnicodeText, index: int, value: str, shared_memory) -> None:
    size = space.max_length
    dest = np.frombuffer(shared_memory.get_obj(), dtype=np.int32)[index * size : (index + 1) * size]
    codes = np.fromiter((ord(c) for c in value[:size]), dtype=np.int32, count=min(len(value), size))
    dest[: codes.size] = codes
    if codes.size < size:
        dest[codes.size :] = -1
