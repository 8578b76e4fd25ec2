"""Real ALFWorld game files for the native engine: ``game.tw-pddl`` + ``traj_data.json``.

:func:`load_game_file` reads a game as ALFWorld ships it (``$ALFWORLD_DATA/json_2.1.1/
<split>/<task>/<trial>/game.tw-pddl``: JSON with ``pddl_domain``, ``grammar``,
``pddl_problem``, ``solvable``) into a :class:`~t2po_gym.envs.alfworld.spec.WorldSpec`.
The domain and the grammar are checked against ALFWorld's (the ``alfworld`` package's
``alfred.pddl``/``alfred.twl2``, data version 2.1.2, and the released 2.1.1 variant):
anything the native engine cannot express raises :class:`UnsupportedGameError` naming
the file and the construct, never a silent fallback. Nothing in a file is executed
(TextWorld evaluates ``{...}`` grammar expressions with Python's ``eval``; here the
grammar is only compared as text).

:func:`find_alfworld_games` lists the games of a folder as ALFWorld's loader does
(``alfworld/agents/environment/alfred_tw_env.py:L140-L190``).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

from t2po_gym.envs.alfworld.assets import TASK_TYPES, alfworld_package_dir
from t2po_gym.envs.alfworld.game import Task
from t2po_gym.envs.alfworld.pddl import PddlError, formula_predicates, parse_sexpr, read_problem
from t2po_gym.envs.alfworld.spec import OBJECT_PROPERTY_PREDICATES, ObjSpec, RecSpec, WorldSpec, demangled_names

__all__ = [
    "GameFileError",
    "UnsupportedGameError",
    "load_game_file",
    "find_alfworld_games",
    "grammar_version",
    "check_game_file",
]


class GameFileError(ValueError):
    """A game file that cannot be read (missing, empty, truncated, not ALFWorld's format)."""


class UnsupportedGameError(GameFileError):
    """A well-formed game with a construct the native engine does not implement."""


# ----------------------------------------------------------------------------- grammar
def _scan_twl2(text: str, what: str) -> list[tuple[str, str]]:
    """Tokens of TextWorld's ``.twl2`` grammar format: ``(kind, value)`` with kind in id/str/punct."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith('"""', i):
            j = text.find('"""', i + 3)
            if j < 0:
                raise GameFileError(f"{what}: grammar has an unterminated triple-quoted block")
            out.append(("str", text[i + 3 : j]))
            i = j + 3
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise GameFileError(f"{what}: grammar has an unterminated string")
            out.append(("str", text[i + 1 : j]))
            i = j + 1
        elif text.startswith("::", i):
            out.append(("punct", "::"))
            i += 2
        elif c in "{};":
            out.append(("punct", c))
            i += 1
        elif c.isalnum() or c == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] in "_-"):
                j += 1
            out.append(("id", text[i:j]))
            i = j
        else:
            raise GameFileError(f"{what}: unexpected character {c!r} in the grammar")
    return out


def _grammar_json(block: str, what: str, where: str) -> dict:
    # TextWorld dedents the block and drops lines starting with '#' in action grammars
    # (textworld/envs/pddl/logic/__init__.py:L64-L72)
    body = textwrap.dedent(block)
    body = "\n".join(line for line in body.split("\n") if not line.lstrip().startswith("#"))
    try:
        data = json.loads(body)
    except ValueError as e:
        raise GameFileError(f"{what}: the grammar block of {where} is not valid JSON ({e})") from e
    if not isinstance(data, dict):
        raise GameFileError(f"{what}: the grammar block of {where} is not a JSON object")
    return data


def parse_grammar(text: str, what: str = "grammar") -> tuple[dict, dict]:
    """``(rules, actions)``: rule name -> list of ``(condition, rhs)``; action -> ``(template, feedback)``."""
    toks = _scan_twl2(text, what)
    rules: dict[str, list] = {}
    actions: dict[str, tuple[str, str]] = {}
    k = 0

    def expect(kind: str, value: str | None = None) -> str:
        nonlocal k
        if k >= len(toks) or toks[k][0] != kind or (value is not None and toks[k][1] != value):
            got = toks[k][1] if k < len(toks) else "end of grammar"
            raise GameFileError(f"{what}: grammar syntax: expected {value or kind}, got {got!r}")
        k += 1
        return toks[k - 1][1]

    def add_rules(data: dict, where: str) -> None:
        for name, alts in data.items():
            if not isinstance(alts, list) or not all(isinstance(a, dict) and "rhs" in a for a in alts):
                raise GameFileError(f"{what}: grammar rule {name!r} in {where} is not a list of {{'rhs': ...}}")
            rules[name] = [(a.get("condition", ""), a["rhs"]) for a in alts]

    while k < len(toks):
        head = expect("id")
        if head == "grammar":
            expect("punct", "::")
            block = expect("str")
            expect("punct", ";")
            add_rules(_grammar_json(block, what, "the grammar"), "the grammar")
        elif head == "action":
            name = expect("id")
            expect("punct", "{")
            fields: dict[str, str] = {}
            while not (k < len(toks) and toks[k] == ("punct", "}")):
                key = expect("id")
                expect("punct", "::")
                fields[key] = expect("str")
                expect("punct", ";")
            expect("punct", "}")
            if "template" not in fields or "feedback" not in fields:
                raise GameFileError(f"{what}: grammar action {name!r} lacks a template or a feedback")
            unknown = set(fields) - {"template", "feedback", "grammar", "pddl"}
            if unknown:
                raise UnsupportedGameError(f"{what}: grammar action {name!r} has unknown fields {sorted(unknown)}")
            actions[name.lower()] = (fields["template"], fields["feedback"])
            if "grammar" in fields:
                add_rules(_grammar_json(fields["grammar"], what, f"action {name!r}"), f"action {name!r}")
        else:
            raise GameFileError(f"{what}: grammar syntax: expected 'grammar' or 'action', got {head!r}")
    return rules, actions


# The three places data version 2.1.1 differs from 2.1.2 (ALFWorld's grammar patch), plus
# the help action that 2.1.2 adds.
_V211_RULES = {
    "GotoLocation.feedback": [("", "You arrive at {lend.name}. #examineReceptacle.feedback#")],
    "PutObject.feedback": [("", "You put the {o.name} in/on the {r.name}.")],
}
_V211_TEMPLATES = {"putobject": "put {o} in/on {r}", "putemptyreceptacleobjectinreceptacle": "put {o} in/on {r}"}


@lru_cache(maxsize=1)
def _reference_grammar() -> tuple[dict, dict]:
    text = (alfworld_package_dir() / "data" / "alfred.twl2").read_text()
    return parse_grammar(text, "alfworld's alfred.twl2")


def _expected_grammar(version: str) -> tuple[dict, dict]:
    rules, actions = _reference_grammar()
    rules, actions = dict(rules), dict(actions)
    if version == "2.1.1":
        rules.update(_V211_RULES)
        rules.pop("help.feedback", None)
        actions.pop("help", None)
        for name, tpl in _V211_TEMPLATES.items():
            actions[name] = (tpl, actions[name][1])
    return rules, actions


_TASK_RULE = re.compile(r'("task"\s*:\s*\[\s*\{\s*"rhs"\s*:\s*")((?:[^"\\]|\\.)*)("\s*\}\s*\])')


def grammar_version(text: str, what: str = "grammar") -> tuple[str, str]:
    """``(version, task_line)`` of an ALFWorld grammar; raises if it is not 2.1.1 or 2.1.2's.

    Every rule and action must equal ALFWorld's, except the ``task`` rule (the task
    sentence the game was generated with). Grammars that differ only in that sentence
    are checked once per process.
    """
    m = _TASK_RULE.search(text)
    if m is not None and len(_TASK_RULE.findall(text)) == 1:
        line = json.loads('"' + m.group(2) + '"')
        if not any(c in line for c in "#{}[]"):
            key = text[: m.start(2)] + "Your task is to: TASK." + text[m.end(2) :]
            try:
                version = _grammar_version_cached(key)
            except GameFileError as e:
                raise type(e)(f"{what}{e}") from None
            return version, line
    return _grammar_version(text, what)


@lru_cache(maxsize=8)
def _grammar_version_cached(text: str) -> str:
    return _grammar_version(text, "")[0]


def _grammar_version(text: str, what: str) -> tuple[str, str]:
    rules, actions = parse_grammar(text, what)
    version = "2.1.1" if rules.get("GotoLocation.feedback") == _V211_RULES["GotoLocation.feedback"] else "2.1.2"
    exp_rules, exp_actions = _expected_grammar(version)
    task = rules.get("task")
    if not task or len(task) != 1 or task[0][0] or not isinstance(task[0][1], str):
        raise UnsupportedGameError(f"{what}: the grammar's 'task' rule is not a single unconditional sentence")
    line = task[0][1]
    if any(c in line for c in "#{}[]"):
        raise UnsupportedGameError(f"{what}: the grammar's 'task' rule uses grammar symbols ({line!r})")
    for name in sorted(set(rules) | set(exp_rules)):
        if name == "task":
            continue
        if name not in rules:
            raise UnsupportedGameError(f"{what}: grammar rule {name!r} of ALFWorld {version} is missing")
        if name not in exp_rules:
            raise UnsupportedGameError(f"{what}: grammar rule {name!r} is not ALFWorld's (version {version})")
        if rules[name] != exp_rules[name]:
            raise UnsupportedGameError(
                f"{what}: grammar rule {name!r} differs from ALFWorld {version}'s; "
                "the native engine cannot play it (use engine='textworld')"
            )
    for name in sorted(set(actions) | set(exp_actions)):
        if actions.get(name) != exp_actions.get(name):
            raise UnsupportedGameError(
                f"{what}: grammar action {name!r} differs from ALFWorld {version}'s "
                f"(got {actions.get(name)!r}); the native engine cannot play it (use engine='textworld')"
            )
    return version, line


# ----------------------------------------------------------------------------- domain
_APPLIANCE_ACTIONS = {"cleanobject": "clean", "heatobject": "heat", "coolobject": "cool"}


def _domain_parts(text: str, what: str) -> tuple[dict, dict[str, list]]:
    """``(sections, actions)`` of a domain: ``:predicates`` etc. and ``:action`` name -> body."""
    try:
        forms = parse_sexpr(text, what=what)
    except PddlError as e:
        raise GameFileError(str(e)) from e
    if len(forms) != 1 or not isinstance(forms[0], list) or forms[0][:1] != ["define"]:
        raise GameFileError(f"{what}: the domain is not a single (define (domain ...) ...) form")
    sections: dict = {}
    actions: dict[str, list] = {}
    for part in forms[0][1:]:
        if not isinstance(part, list) or not part or not isinstance(part[0], str):
            raise UnsupportedGameError(f"{what}: unexpected {part!r} in the domain")
        if part[0] == ":action" and len(part) > 1 and isinstance(part[1], str):
            actions[part[1]] = part[2:]
        else:
            sections[part[0]] = part[1:]
    return sections, actions


def _appliance_types(body: list) -> tuple[list, tuple[str, ...]]:
    """Replace the ``(or (receptacleType ?r XType) ...)`` of an appliance action by a marker."""
    found: list[str] = []

    def walk(x):
        if isinstance(x, list):
            if x and x[0] == "or" and x[1:] and all(
                isinstance(y, list) and len(y) == 3 and y[0] == "receptacletype" and y[1] == "?r" for y in x[1:]
            ):
                found.extend(y[2] for y in x[1:])
                return ["<appliance>"]
            return [walk(y) for y in x]
        return x

    return walk(body), tuple(found)


@lru_cache(maxsize=1)
def _reference_domain() -> tuple[dict, dict[str, list]]:
    text = (alfworld_package_dir() / "data" / "alfred.pddl").read_text()
    return _domain_parts(text, "alfworld's alfred.pddl")


def check_domain(text: str, what: str = "pddl_domain") -> dict:
    """Check a domain against ALFWorld's; returns ``has_help`` and the appliance receptacle classes.

    Every game file carries the domain text; a text already checked is not checked again.
    """
    try:
        return dict(_check_domain_cached(text))
    except GameFileError as e:
        raise type(e)(f"{what}{e}") from None


@lru_cache(maxsize=8)
def _check_domain_cached(text: str) -> tuple:
    return tuple(_check_domain(text, "").items())


def _check_domain(text: str, what: str) -> dict:
    sections, actions = _domain_parts(text, what)
    ref_sections, ref_actions = _reference_domain()
    for name in sorted(set(sections) | set(ref_sections)):
        if sections.get(name) != ref_sections.get(name):
            raise UnsupportedGameError(f"{what}: domain section {name!r} differs from ALFWorld's alfred.pddl")
    out: dict = {"has_help": "help" in actions}
    for name in sorted(set(actions) | set(ref_actions)):
        if name == "help" and name not in actions:
            continue  # data version 2.1.1 predates the help action
        if name not in actions:
            raise UnsupportedGameError(f"{what}: domain action {name!r} of ALFWorld's alfred.pddl is missing")
        if name not in ref_actions:
            raise UnsupportedGameError(f"{what}: domain action {name!r} is not ALFWorld's; the native engine cannot play it")
        body, ref_body = actions[name], ref_actions[name]
        if name in _APPLIANCE_ACTIONS:
            body, types = _appliance_types(body)
            ref_body, _ = _appliance_types(ref_body)
            if not types:
                raise UnsupportedGameError(f"{what}: domain action {name!r}: no (or (receptacleType ?r ...)) appliance test")
            # PDDL symbols are case-insensitive: "SinkBasinType" -> "sinkbasin"
            out[_APPLIANCE_ACTIONS[name]] = tuple(t[:-4] if t.endswith("type") else t for t in types)
        if body != ref_body:
            raise UnsupportedGameError(
                f"{what}: domain action {name!r} differs from ALFWorld's alfred.pddl; "
                "the native engine cannot play it (use engine='textworld')"
            )
    return out


# ----------------------------------------------------------------------------- problem
_OBJECT_FLAGS = ("ishot", "iscool", "isclean", "issliced", "istoggled", "ison")
# Facts no action of the domain reads or writes; kept for the goal test.
_STATIC_OTHER = ("moveable", "full", "wasinreceptacle", "isreceptacleobjectfull", "examined", "checked")
_SUPPORTED_INIT = (
    {"receptacletype", "objecttype", "cancontain", "openable", "opened", "atlocation", "inreceptacle"}
    | {"receptacleatlocation", "objectatlocation", "inreceptacleobject"}
    | set(OBJECT_PROPERTY_PREDICATES)
    | set(_OBJECT_FLAGS)
    | set(_STATIC_OTHER)
)
# Predicates a goal may test: all facts the native engine keeps (not "checked", which
# look/examine change and the engine does not track).
_SUPPORTED_GOAL = (_SUPPORTED_INIT - {"checked", "examined"}) | {"holds", "holdsany"}


def _type_class(tname: str, what: str) -> str:
    if not tname.endswith("Type") or len(tname) <= 4:
        raise UnsupportedGameError(f"{what}: type constant {tname!r} does not follow ALFWorld's <Class>Type naming")
    return tname[:-4]


def build_spec(
    problem_text: str, *, version: str, domain: dict, task: Task, task_text: str, source: str, what: str
) -> WorldSpec:
    """A :class:`WorldSpec` from an ALFWorld PDDL problem."""
    try:
        prob = read_problem(problem_text, what=what)
    except PddlError as e:
        raise GameFileError(str(e)) from e
    types = {n.lower(): t.lower() for n, t in prob.objects.items()}
    facts: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for fact in prob.init:
        pred = fact[0]
        if pred not in _SUPPORTED_INIT:
            raise UnsupportedGameError(f"{what}: init predicate {pred!r} is not supported by the native engine")
        facts[pred].append(tuple(a for a in fact[1:]))

    def lo(x: str) -> str:
        return x.lower()

    entity_ids = sorted({lo(a) for rows in facts.values() for args in rows for a in args})
    names = demangled_names(entity_ids)

    def of_type(t: str) -> list[str]:
        return sorted(e for e in entity_ids if types.get(e) == t)

    agents = [a for (a, _l) in facts["atlocation"]]
    if len(facts["atlocation"]) != 1:
        raise UnsupportedGameError(f"{what}: expected one (atLocation agent loc) fact, got {len(facts['atlocation'])}")
    agent, start_loc = lo(agents[0]), lo(facts["atlocation"][0][1])
    locations = of_type("location")
    if start_loc not in locations:
        raise GameFileError(f"{what}: the agent's start {start_loc!r} is not a declared location")
    loc_index = {l: k for k, l in enumerate(locations)}

    rec_ids = of_type("receptacle")
    rec_index = {r: k for k, r in enumerate(rec_ids)}
    rtype: dict[str, list[str]] = defaultdict(list)
    for r, t in facts["receptacletype"]:
        rtype[lo(r)].append(_type_class(t, what))
    rloc: dict[str, list[str]] = defaultdict(list)
    for r, l in facts["receptacleatlocation"]:
        rloc[lo(r)].append(lo(l))
    openable = {lo(r) for (r,) in facts["openable"]}
    recs = []
    for r in rec_ids:
        if len(rtype[r]) != 1 or len(rloc[r]) != 1 or rloc[r][0] not in loc_index:
            raise UnsupportedGameError(
                f"{what}: receptacle {r!r} needs exactly one receptacleType and one receptacleAtLocation "
                f"(got {len(rtype[r])} and {len(rloc[r])})"
            )
        recs.append(RecSpec(id=r, name=names[r], rtype=rtype[r][0], loc=loc_index[rloc[r][0]], openable=r in openable))

    obj_ids = of_type("object")
    obj_index = {o: k for k, o in enumerate(obj_ids)}
    otype: dict[str, list[str]] = defaultdict(list)
    for o, t in facts["objecttype"]:
        otype[lo(o)].append(_type_class(t, what))
    props: dict[str, set[str]] = {p: {lo(args[0]) for args in facts[p]} for p in OBJECT_PROPERTY_PREDICATES}
    objs = []
    for o in obj_ids:
        if len(otype[o]) != 1:
            raise UnsupportedGameError(f"{what}: object {o!r} needs exactly one objectType (got {len(otype[o])})")
        objs.append(
            ObjSpec(id=o, name=names[o], otype=otype[o][0],
                    **{attr: o in props[p] for p, attr in OBJECT_PROPERTY_PREDICATES.items()})
        )

    def idx(table: dict, x: str, kind: str) -> int:
        k = table.get(lo(x))
        if k is None:
            raise GameFileError(f"{what}: {x!r} is used as a {kind} but not declared as one")
        return k

    init_in = [(idx(obj_index, o, "object"), idx(rec_index, r, "receptacle")) for o, r in facts["inreceptacle"]]
    init_at = [(idx(obj_index, o, "object"), idx(loc_index, l, "location")) for o, l in facts["objectatlocation"]]
    flags = {f: frozenset(idx(obj_index, a[0], "object") for a in facts[f]) for f in _OBJECT_FLAGS if facts[f]}
    can = frozenset((_type_class(rt, what), _type_class(ot, what)) for rt, ot in facts["cancontain"])
    iro = [(idx(obj_index, a, "object"), idx(obj_index, b, "object")) for a, b in facts["inreceptacleobject"]]
    static = {p: frozenset(tuple(lo(a) for a in args) for args in facts[p]) for p in _STATIC_OTHER if facts[p]}
    try:
        used = formula_predicates(prob.goal, what=f"{what} (:goal)")
    except PddlError as e:
        raise UnsupportedGameError(str(e)) from e
    unknown = sorted(used - _SUPPORTED_GOAL)
    if unknown:
        raise UnsupportedGameError(f"{what}: goal predicates {unknown} are not supported by the native engine")
    return WorldSpec(
        source=source,
        grammar=version,
        agent=agent,
        locations=locations,
        location_names=[names[l] for l in locations],
        start=loc_index[start_loc],
        receptacles=recs,
        objects=objs,
        can_contain=can,
        init_in=sorted(set(init_in)),
        init_at=sorted(set(init_at)),
        init_opened=frozenset(idx(rec_index, a[0], "receptacle") for a in facts["opened"]),
        init_flags=flags,
        in_receptacle_object=sorted(set(iro)),
        goal=prob.goal,
        task=task,
        has_help=domain["has_help"],
        static_facts=static,
        task_text=task_text,
        clean_rtypes=domain["clean"],
        heat_rtypes=domain["heat"],
        cool_rtypes=domain["cool"],
    )


# ----------------------------------------------------------------------------- files
def _read_json(path: Path, what: str) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise GameFileError(f"{what}: cannot read {path}: {e}") from e
    if not raw.strip():
        raise GameFileError(f"{what}: {path} is empty")
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise GameFileError(f"{what}: {path} is not valid JSON (truncated?): {e}") from e
    if not isinstance(data, dict):
        raise GameFileError(f"{what}: {path} does not hold a JSON object")
    return data


def check_game_file(path: str | os.PathLike, *, argument: str = "game_files") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a regular file; a clear error otherwise."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{argument}: {str(p)!r} does not exist")
    if p.is_dir():
        raise IsADirectoryError(
            f"{argument}: {str(p)!r} is a directory; give its game.tw-pddl file "
            "(or use find_alfworld_games(folder) to list the games under it)"
        )
    if p.stat().st_size == 0:
        raise GameFileError(f"{argument}: {str(p)!r} is empty")
    return p


def load_task(game_path: Path) -> dict:
    """ALFWorld's ``traj_data.json`` beside ``game_path`` (``task_type`` and ``pddl_params``)."""
    traj_path = game_path.parent / "traj_data.json"
    if not traj_path.is_file():
        raise GameFileError(
            f"{game_path}: no traj_data.json beside it (ALFWorld keeps the task type and "
            "pddl_params there; its expert needs them)"
        )
    traj = _read_json(traj_path, str(traj_path))
    tt = traj.get("task_type")
    params = traj.get("pddl_params")
    if tt not in TASK_TYPES or not isinstance(params, dict):
        raise GameFileError(f"{traj_path}: task_type {tt!r} / pddl_params are not ALFWorld's")
    return traj


def load_game_file(path: str | os.PathLike) -> WorldSpec:
    """Read a real ALFWorld game for the native engine (see the module docstring).

    Raises:
        FileNotFoundError / IsADirectoryError: ``path`` is not a file.
        GameFileError: empty, truncated or malformed file; no ``traj_data.json`` beside it.
        UnsupportedGameError: a domain, grammar or problem construct the native engine
            does not implement (the message names it); ``engine="textworld"`` plays those.
    """
    p = check_game_file(path, argument="game file")
    what = str(p)
    data = _read_json(p, what)
    for key in ("pddl_domain", "grammar", "pddl_problem"):
        if not isinstance(data.get(key), str):
            raise GameFileError(f"{what}: no {key!r} text: not an ALFWorld game.tw-pddl")
    traj = load_task(p)
    params = traj["pddl_params"]
    if params.get("mrecep_target") or params.get("object_sliced"):
        raise UnsupportedGameError(
            f"{what}: movable-receptacle and sliced-object tasks are not supported "
            "(ALFWorld's own loader skips them too)"
        )
    domain = check_domain(data["pddl_domain"], f"{what} (pddl_domain)")
    version, task_line = grammar_version(data["grammar"], f"{what} (grammar)")
    if (version == "2.1.2") != domain["has_help"]:
        raise UnsupportedGameError(
            f"{what}: grammar version {version} with a domain {'with' if domain['has_help'] else 'without'} "
            "the help action: not a combination ALFWorld ships"
        )
    prefix = "Your task is to: "
    desc = task_line[len(prefix) :] if task_line.startswith(prefix) else task_line
    desc = desc[:-1] if desc.endswith(".") else desc
    task = Task(
        task_type=traj["task_type"],
        object_target=str(params.get("object_target", "")),
        parent_target=str(params.get("parent_target", "")),
        toggle_target=str(params.get("toggle_target", "")),
        mrecep_target=str(params.get("mrecep_target", "")),
        object_sliced=bool(params.get("object_sliced", False)),
        description=desc,
    )
    return build_spec(
        data["pddl_problem"],
        version=version,
        domain=domain,
        task=task,
        task_text=task_line,
        source=what,
        what=f"{what} (pddl_problem)",
    )


def find_alfworld_games(root: str | os.PathLike | None = None, *, task_types: tuple[str, ...] | None = None) -> list[Path]:
    """The playable games under ``root`` (or ``$ALFWORLD_DATA``), as ALFWorld's loader picks them.

    A game is a folder holding ``traj_data.json``; it is skipped when its path names a
    ``movable`` or ``Sliced`` task, when ``game.tw-pddl`` is missing or unreadable, when it
    lacks the ``solvable`` key or is not solvable, or when its task type is not in
    ``task_types`` (default: all six), as ``AlfredTWEnv.collect_game_files`` does. Sorted by path.
    """
    root = root or os.environ.get("ALFWORLD_DATA")
    if not root or not Path(root).is_dir():
        return []
    wanted = set(task_types or TASK_TYPES)
    games = []
    trajs = sorted(Path(root).rglob("traj_data.json"))
    from tqdm import tqdm

    # ALFWorld's train split is 3553 folders of ~100 KB games: show progress on big folders
    for traj_path in tqdm(trajs, desc=f"ALFWorld games in {root}", disable=len(trajs) < 500, leave=False):
        folder = traj_path.parent
        if "movable" in str(folder) or "Sliced" in str(folder):
            continue
        path = folder / "game.tw-pddl"
        try:
            traj = json.loads(traj_path.read_text())
            if traj.get("task_type") not in wanted or not path.is_file():
                continue
            if json.loads(path.read_text()).get("solvable"):
                games.append(path)
        except (OSError, ValueError, AttributeError):
            continue
    return games
