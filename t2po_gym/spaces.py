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

