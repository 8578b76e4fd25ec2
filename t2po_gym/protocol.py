"""The agent response format and its parser.

An agent answers every turn with free text. Training uses the strict format::

    <think> reasoning ... </think> <action> go to fridge 1 </action>

The action is the text inside the *last* ``<action>...</action>`` pair. With
``strict=True`` exactly one ``<think>...</think>`` block must come before it and
nothing but whitespace may follow it. With ``strict=False`` a bare command
without any tag is accepted as the action (handy for humans and scripted agents).

Parsing is linear in the length of the response (no regex backtracking), so a
1 MB response costs milliseconds, and it never raises on ``str`` input.

**Protocols.** Every env takes ``protocol=``:

* ``"released"`` (default): what the released T2PO code (WillDreamer/T2PO-ICML, a verl-agent
  fork) does with a response, so that scores compare with the papers'. The response is
  *projected* to a command by :func:`project_action_response` (ALFWorld, WebShop:
  ``agent_system/environments/env_package/{alfworld,webshop}/projection.py``) or
  :func:`project_search_response` (Search: ``env_package/search/projection.py``), and the
  command is executed even when the response is invalid: invalidity is only reported
  (``info["action_valid"]``) for the trainer's penalty.
* ``"strict"``: this project's stricter rule (:func:`parse_response`): case-sensitive
  commands, an invalid response is a no-op with an explanation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from t2po_gym.spaces import printable_charset

__all__ = [
    "PROTOCOLS",
    "Projection",
    "project_action_response",
    "project_search_response",
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


# ----------------------------------------------------------------------------- released protocol
#: the response protocols every env accepts (see the module doc)
PROTOCOLS = ("released", "strict")

#: a response is invalid when it holds a CJK unified ideograph (projection.py:L87 / alfworld L40)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# the whole response must be one think block then one action block (webshop projection.py:L76)
_STRICT_SHAPE = re.compile(r"^\s*<think>(.*?)</think>\s*<action>(.*?)</action>\s*$", re.IGNORECASE | re.DOTALL)
_THINK_OPEN = re.compile(r"<\s*think\s*>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</\s*think\s*>", re.IGNORECASE)
_ACTION_OPEN = re.compile(r"<\s*action\s*>", re.IGNORECASE)
_ACTION_CLOSE = re.compile(r"</\s*action\s*>", re.IGNORECASE)
#: a response without an action block executes its last this many characters (projection.py:L85)
RELEASED_TAIL_CHARS = 30


@dataclass(frozen=True)
class Projection:
    """A response projected to a command by the released code's rule.

    Attributes:
        command: what is executed in the env (may be ``""``).
        format_valid: the response has the required shape (the released ``format_valids``).
        valid: the released ``valids`` before any env-specific check (ALFWorld also requires
            the command to be admissible).
    """

    command: str
    format_valid: bool
    valid: bool


def project_action_response(text: str) -> Projection:
    """The ALFWorld / WebShop projection of the released code
    (``env_package/webshop/projection.py:L66-122``, ``env_package/alfworld/projection.py:L19-81``).

    * Valid: the whole response is ``<think>...</think><action>...</action>`` (case-insensitive
      tags, whitespace around), exactly one of each tag, no CJK character. The command is the
      action text, stripped and lower-cased.
    * Otherwise, when some ``<action>...</action>`` exists, the first one's text (stripped,
      lower-cased) is executed and the response is invalid.
    * Otherwise the last 30 characters of the response, unchanged, are executed (invalid).
    """
    if not isinstance(text, str):
        raise TypeError(f"an action must be a str, got {type(text).__name__}")
    # The tag counts are checked before the shape: with one tag of each kind the shape regex
    # cannot backtrack over many candidates (the released order, regex first, is quadratic on
    # adversarial input such as "</think><action>" repeated; the outcome is the same).
    if (
        len(_THINK_OPEN.findall(text)) == len(_THINK_CLOSE.findall(text)) == 1
        and len(_ACTION_OPEN.findall(text)) == len(_ACTION_CLOSE.findall(text)) == 1
        and not _CJK.search(text)
    ):
        m = _STRICT_SHAPE.match(text)
        if m is not None:
            return Projection(m.group(2).strip().lower(), True, True)
    body = _first_block(text, _ACTION_OPEN, _ACTION_CLOSE)
    if body is not None:
        return Projection(body.strip().lower(), False, False)
    return Projection(text[-RELEASED_TAIL_CHARS:], False, False)


def _first_block(text: str, open_re: re.Pattern, close_re: re.Pattern) -> str | None:
    """What ``re.search(open + "(.*?)" + close, text, DOTALL)`` captures, in linear time: the text
    from the first opening tag to the first closing tag after it (if the first opening tag has no
    closing tag after it, no later one has either)."""
    m = open_re.search(text)
    if m is None:
        return None
    c = close_re.search(text, m.end())
    return None if c is None else text[m.end() : c.start()]


# search/projection.py:L55-58 (blocks "<search>(.*?)</search>", case-insensitive), matched in linear time
_SEARCH_OPEN = re.compile(r"<search>", re.IGNORECASE)
_SEARCH_CLOSE = re.compile(r"</search>", re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)


def project_search_response(text: str) -> Projection:
    """The Search projection of the released code (``env_package/search/projection.py:L20-88``).

    The response is first cut after the first ``</search>`` (else the first ``</answer>``);
    the command is ``<search>q</search>`` for the first search block, else
    ``<answer>a</answer>`` for the first answer block (text stripped, case kept), else ``""``
    (invalid). It is also invalid when the *whole* response holds both a ``<search>`` and an
    ``<answer>`` tag, or either tag twice. No ``<think>`` is required.
    """
    if not isinstance(text, str):
        raise TypeError(f"an action must be a str, got {type(text).__name__}")
    cut = text
    if "</search>" in cut:
        cut = cut.split("</search>", 1)[0] + "</search>"
    elif "</answer>" in cut:
        cut = cut.split("</answer>", 1)[0] + "</answer>"
    valid = True
    body = _first_block(cut, _SEARCH_OPEN, _SEARCH_CLOSE)
    if body is not None:
        command = f"<search>{body.strip()}</search>"
    else:
        body = _first_block(cut, _ANSWER_OPEN, _ANSWER_CLOSE)
        if body is not None:
            command = f"<answer>{body.strip()}</answer>"
        else:
            command, valid = "", False
    n_search, n_answer = len(_SEARCH_OPEN.findall(text)), len(_ANSWER_OPEN.findall(text))
    if (n_search and n_answer) or n_search > 1 or n_answer > 1:
        valid = False
    return Projection(command, valid, valid)
