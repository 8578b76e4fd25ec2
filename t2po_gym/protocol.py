"""The agent response format and its parser.

An agent answers every turn with free text. Training uses the strict format::

    <think> reasoning ... </think> <action> go to fridge 1 </action>

The action is the text inside the *last* ``<action>...</action>`` pair. With
``strict=True`` exactly one ``<think>...</think>`` block must come before it and
nothing but whitespace may follow it. With ``strict=False`` a bare command
without any tag is accepted as the action (handy for humans and scripted agents).

Parsing is linear in the length of the response (no regex backtracking), so a
1 MB response costs milliseconds, and it never raises on ``str`` input.
"""

from __future__ import annotations

from dataclasses import dataclass

from t2po_gym.spaces import printable_charset

__all__ = [
    "ParsedResponse",
    "parse_response",
    "find_tag",
    "sanitize_text",
    "MAX_COMMAND_CHARS",
    "THINK_OPEN",
    "THINK_CLOSE",
    "ACTION_OPEN",
    "ACTION_CLOSE",
]

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ACTION_OPEN, ACTION_CLOSE = "<action>", "</action>"

#: Commands longer than this are rejected as invalid before they reach a game.
MAX_COMMAND_CHARS = 2048


@dataclass(frozen=True)
class ParsedResponse:
    """The result of parsing one agent response.

    Attributes:
        action: the extracted command (stripped, may be ``""``), or ``None`` when no
            command could be extracted.
        think: the reasoning text, or ``None`` when there was no think block.
        format_valid: whether the response follows the required format.
        error: a human-readable reason when ``format_valid`` is False or
            ``action`` is None, else ``""``.
    """

    action: str | None
    think: str | None
    format_valid: bool
    error: str = ""


def find_tag(text: str, tag: str, *, last: bool = True) -> tuple[str | None, str]:
    """Return the content of the last (or first) ``<tag>...</tag>`` pair in ``text``.

    Returns ``(content, "")`` on success, ``(None, reason)`` when the tag is
    missing, unclosed or nested inside itself.
    """
    open_t, close_t = f"<{tag}>", f"</{tag}>"
    if last:
        start = text.rfind(open_t)
    else:
        start = text.find(open_t)
    if start < 0:
        if close_t in text:
            return None, f"found {close_t} without a matching {open_t}"
        return None, f"no {open_t}...{close_t} block"
    body_start = start + len(open_t)
    end = text.find(close_t, body_start)
    if end < 0:
        return None, f"{open_t} is not closed by {close_t}"
    content = text[body_start:end]
    if open_t in content:  # only possible when last=False
        return None, f"nested {open_t} tags"
    if not last:
        return content, ""
    # With last=True, an <action> opened earlier and never closed before this one
    # means the tags are nested: "<action> a <action> b </action> </action>".
    before = text[:start]
    if before.count(open_t) != before.count(close_t):
        return None, f"nested or unbalanced {open_t} tags"
    return content, ""


def sanitize_text(text: str, limit: int | None = None) -> str:
    """Make ``text`` safe to show in an observation.

    Every character outside the observation charset (printable Unicode of the
    Basic Multilingual Plane, newline, tab), lone surrogates included, becomes
    U+FFFD; the text is cut to ``limit`` characters (plus ``...``).
    """
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    if text.isascii() and text.isprintable():
        return text
    charset = printable_charset()
    return "".join(c if c in charset else "\ufffd" for c in text)


def parse_response(
    text: str,
    *,
    strict: bool = True,
    action_tag: str = "action",
) -> ParsedResponse:
    """Parse an agent response into a command.

    Args:
        text: the raw response. Must be a ``str`` (a ``TypeError`` otherwise).
        strict: require ``<think>...</think>`` followed by ``<action>...</action>``
            (nothing but whitespace after the action). When False, the last action
            block is used if present, else the whole stripped text is the command.
        action_tag: the tag that holds the command (``action`` by default).

    Returns:
        A :class:`ParsedResponse`. It never raises for ``str`` input.
    """
    if not isinstance(text, str):
        raise TypeError(f"an action must be a str, got {type(text).__name__}")
    open_t, close_t = f"<{action_tag}>", f"</{action_tag}>"
    content, err = find_tag(text, action_tag, last=True)
    if content is None:
        if strict:
            return ParsedResponse(None, None, False, err)
        if open_t in text or close_t in text:
            return ParsedResponse(None, None, False, err)
        bare = text.strip()
        if THINK_OPEN in bare or THINK_CLOSE in bare:
            return ParsedResponse(None, None, False, "a think block but " + err)
        return ParsedResponse(bare, None, True, "")
    action = content.strip()
    if not strict:
        think, _ = find_tag(text, "think", last=False)
        return ParsedResponse(action, think, True, "")

    end_of_action = text.rfind(close_t) + len(close_t)
    if text[end_of_action:].strip():
        return ParsedResponse(action, None, False, f"text after {close_t}")
    start_of_action = text.rfind(open_t)
    head = text[:start_of_action]
    if head.count(open_t) or head.count(close_t):
        return ParsedResponse(action, None, False, f"more than one {open_t} block")
    n_open, n_close = head.count(THINK_OPEN), head.count(THINK_CLOSE)
    if n_open != 1 or n_close != 1:
        return ParsedResponse(
            action, None, False, f"expected exactly one {THINK_OPEN}...{THINK_CLOSE} before {open_t}"
        )
    t0 = head.find(THINK_OPEN)
    t1 = head.find(THINK_CLOSE)
    if t1 < t0:
        return ParsedResponse(action, None, False, f"{THINK_CLOSE} before {THINK_OPEN}")
    if head[:t0].strip() or head[t1 + len(THINK_CLOSE):].strip():
        return ParsedResponse(action, None, False, "text outside the think and action blocks")
    think = head[t0 + len(THINK_OPEN) : t1].strip()
    return ParsedResponse(action, think, True, "")
