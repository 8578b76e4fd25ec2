"""A small PDDL reader: s-expressions, ALFWorld problems and first-order goal formulas.

Only data is read: the text is tokenised and nested into lists, never evaluated as
code. Symbols are lower-cased, as Fast Downward's translator (the parser behind
TextWorld's PDDL engine, ``fast_downward/translate/pddl_parser``) does, so ids and
predicate names compare exactly as they do in ``engine="textworld"``.

:func:`read_problem` returns the objects, the initial facts and the goal of an
ALFWorld ``pddl_problem``; :func:`holds` decides a goal formula against a fact source
(anything with a ``facts(predicate)`` method yielding argument tuples).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "PddlError",
    "parse_sexpr",
    "Problem",
    "read_problem",
    "holds",
    "compile_goal",
    "formula_predicates",
    "strip_comments",
]

SExpr = "str | list[SExpr]"
_TOKEN = re.compile(r"\(|\)|[^\s()]+")
_MAX_DEPTH = 64  # ALFWorld's deepest goal nests 9 levels; deeper input is not PDDL we know


class PddlError(ValueError):
    """Malformed or unsupported PDDL; the message names the construct."""


def strip_comments(text: str) -> str:
    """Remove ``;`` comments (to the end of the line)."""
    return "\n".join(line.split(";", 1)[0] for line in text.splitlines())


def parse_sexpr(text: str, *, what: str = "PDDL text", lower: bool = True) -> list:
    """Parse ``text`` into nested lists of (lower-cased) symbols (several top-level forms allowed).

    Raises :class:`PddlError` on unbalanced parentheses or nesting deeper than 64.
    """
    stack: list[list] = [[]]
    for tok in _TOKEN.findall(strip_comments(text)):
        if tok == "(":
            if len(stack) > _MAX_DEPTH:
                raise PddlError(f"{what}: parentheses nest deeper than {_MAX_DEPTH} levels")
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise PddlError(f"{what}: unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok.lower() if lower else tok)
    if len(stack) != 1:
        raise PddlError(f"{what}: {len(stack) - 1} unclosed '(' (truncated file?)")
    return stack[0]


def _typed_list(items: list, what: str) -> list[tuple[str, str]]:
    """``a b - t c - u`` -> ``[(a, t), (b, t), (c, u)]`` (untyped names get ``object``)."""
    out: list[tuple[str, str]] = []
    pending: list[str] = []
    it = iter(items)
    for tok in it:
        if isinstance(tok, list):
            raise PddlError(f"{what}: unexpected list {tok!r} in a typed list")
        if tok == "-":
            typ = next(it, None)
            if not isinstance(typ, str):
                raise PddlError(f"{what}: '-' without a type")
            out += [(n, typ) for n in pending]
            pending = []
        else:
            pending.append(tok)
    out += [(n, "object") for n in pending]
    return out


@dataclass
class Problem:
    """An ALFWorld PDDL problem.

    Attributes:
        name: the problem name.
        objects: object name -> PDDL type (lower-cased).
        init: the initial facts as ``(predicate, arg, ...)`` tuples, in file order.
        goal: the goal formula as nested lists.
    """

    name: str
    objects: dict[str, str]
    init: list[tuple[str, ...]]
    goal: list
    other_sections: list[str] = field(default_factory=list)


def read_problem(text: str, *, what: str = "pddl_problem") -> Problem:
    """Read a PDDL problem (``(define (problem ...) (:domain ...) (:objects ...) (:init ...) (:goal ...))``).

    Object names and init arguments keep their case (ALFRED class names such as
    ``CounterTopType`` are needed as written); keywords, predicates and the goal are
    lower-cased.
    """
    forms = parse_sexpr(text, what=what, lower=False)
    forms = [_lower_keywords(forms[0])] if forms and isinstance(forms[0], list) else forms
    if len(forms) != 1 or not isinstance(forms[0], list) or not forms[0] or forms[0][0] != "define":
        raise PddlError(f"{what}: expected a single (define (problem ...) ...) form")
    body = forms[0][1:]
    name = ""
    objects: dict[str, str] = {}
    init: list[tuple[str, ...]] = []
    goal: list | None = None
    other: list[str] = []
    for part in body:
        if not isinstance(part, list) or not part:
            raise PddlError(f"{what}: unexpected {part!r} in the problem")
        head = part[0]
        if head == "problem" and len(part) == 2:
            name = part[1]
        elif head == ":domain":
            if part[1:] != ["alfred"]:
                raise PddlError(f"{what}: domain {part[1:]!r} is not ALFWorld's 'alfred'")
        elif head == ":objects":
            for n, t in _typed_list(part[1:], f"{what} (:objects)"):
                objects[n] = t
        elif head == ":init":
            for fact in part[1:]:
                if not isinstance(fact, list) or not fact or any(isinstance(a, list) for a in fact):
                    if isinstance(fact, list) and fact and fact[0] == "=":
                        continue  # numeric fluents (distances, total-cost) play no part in play
                    raise PddlError(f"{what}: unsupported init fact {_show(fact)}")
                if fact[0] == "=":
                    continue
                init.append((fact[0].lower(), *fact[1:]))
        elif head == ":goal":
            if len(part) != 2 or not isinstance(part[1], list):
                raise PddlError(f"{what}: (:goal ...) must hold one formula")
            goal = _lower_all(part[1])
        elif head in (":requirements", ":metric"):
            other.append(head)
        else:
            raise PddlError(f"{what}: unsupported section {head!r}")
    if goal is None:
        raise PddlError(f"{what}: no (:goal ...) section")
    return Problem(name=name, objects=objects, init=init, goal=goal, other_sections=other)


def _lower_keywords(form: list) -> list:
    """Lower-case the heads of the define form and of its sections (not the names inside)."""
    out = [form[0].lower() if isinstance(form[0], str) else form[0]]
    for part in form[1:]:
        if isinstance(part, list) and part and isinstance(part[0], str):
            part = [part[0].lower(), *part[1:]]
            if part[0] == ":domain" or part[0] == "problem":
                part = [part[0], *(p.lower() if isinstance(p, str) else p for p in part[1:])]
        out.append(part)
    return out


def _lower_all(x):
    return x.lower() if isinstance(x, str) else [_lower_all(y) for y in x]


def _show(x, limit: int = 120) -> str:
    s = repr(x)
    return s if len(s) <= limit else s[:limit] + "..."


# ----------------------------------------------------------------------------- goals
_CONNECTIVES = ("and", "or", "not", "exists", "forall", "imply", "=")


def formula_predicates(f: list, *, what: str = "goal") -> set[str]:
    """The predicate names a formula uses (raises :class:`PddlError` on a malformed one)."""
    out: set[str] = set()

    def walk(g, depth: int = 0) -> None:
        if not isinstance(g, list) or not g or not isinstance(g[0], str):
            raise PddlError(f"{what}: malformed formula {_show(g)}")
        head = g[0]
        if head in ("and", "or"):
            for sub in g[1:]:
                walk(sub, depth + 1)
        elif head == "not":
            if len(g) != 2:
                raise PddlError(f"{what}: (not ...) takes one formula: {_show(g)}")
            walk(g[1], depth + 1)
        elif head == "imply":
            if len(g) != 3:
                raise PddlError(f"{what}: (imply ...) takes two formulas: {_show(g)}")
            walk(g[1], depth + 1)
            walk(g[2], depth + 1)
        elif head in ("exists", "forall"):
            if len(g) != 3 or not isinstance(g[1], list):
                raise PddlError(f"{what}: malformed ({head} ...): {_show(g)}")
            for n, _ in _typed_list([t.rstrip(",") for t in g[1] if t != ","], what):
                if not n.startswith("?"):
                    raise PddlError(f"{what}: {head} binds {n!r}, not a ?variable")
            walk(g[2], depth + 1)
        elif head == "=":
            if len(g) != 3:
                raise PddlError(f"{what}: (= a b) takes two terms: {_show(g)}")
        else:
            if any(isinstance(a, list) for a in g[1:]):
                raise PddlError(f"{what}: unsupported construct {_show(g)}")
            out.add(head)

    walk(f)
    return out


class FactSource:
    """What :func:`holds` needs: the true facts of a predicate and the objects of a type."""

    def facts(self, predicate: str) -> Iterable[tuple[str, ...]]:  # pragma: no cover - interface
        raise NotImplementedError

    def objects_of_type(self, typ: str) -> Iterable[str]:  # pragma: no cover - interface
        raise NotImplementedError


def holds(f: list, src: FactSource, binding: dict[str, str] | None = None) -> bool:
    """Whether the closed formula ``f`` is true in ``src`` (under ``binding`` of its free variables).

    Existential quantifiers are solved by a join over their conjuncts: a positive atom
    with unbound variables enumerates the facts that match it, every other literal is
    tested once its variables are bound. This is the same truth value Fast Downward's
    goal test gives (TextWorld's ``PddlState.check_goal``), without grounding every
    combination of objects. For repeated tests compile once with :func:`compile_goal`.
    """
    return compile_goal(f)(src, binding)


class _Node:
    __slots__ = ("kind", "args", "vars", "types", "lits")

    def __init__(self, kind, args=(), types=None, lits=()):
        self.kind = kind  # "atom" "eq" "and" "or" "not" "imply" "exists" "forall"
        self.args = args
        self.types = types or {}
        self.lits = list(lits)
        self.vars: frozenset = frozenset()


def _compile(f) -> _Node:
    head = f[0]
    if head in ("and", "or"):
        n = _Node(head, lits=[_compile(g) for g in f[1:]])
    elif head == "not":
        n = _Node("not", lits=[_compile(f[1])])
    elif head == "imply":
        n = _Node("imply", lits=[_compile(f[1]), _compile(f[2])])
    elif head == "=":
        n = _Node("eq", args=(f[1], f[2]))
    elif head in ("exists", "forall"):
        types = dict(_typed_list([t.rstrip(",") for t in f[1] if t != ","], "goal"))
        body = _compile(f[2])
        if head == "forall":
            # forall x: body  ==  not exists x: not body
            inner = _Node("exists", types=types, lits=[_Node("not", lits=[body])])
            _set_vars(inner)
            n = _Node("not", lits=[inner])
        else:
            n = _Node("exists", types=types, lits=_flatten(body, types))
    else:
        n = _Node("atom", args=(head, *f[1:]))
    _set_vars(n)
    return n


def _flatten(body: _Node, types: dict) -> list:
    """The conjuncts of an exists body, nested positive exists merged in (fresh names only)."""
    out = []
    for lit in body.lits if body.kind == "and" else [body]:
        if lit.kind == "and":
            out += _flatten(lit, types)
        elif lit.kind == "exists" and not (set(lit.types) & set(types)):
            types.update(lit.types)
            out += lit.lits
        else:
            out.append(lit)
    return out


def _set_vars(n: _Node) -> None:
    if n.kind == "atom":
        n.vars = frozenset(a for a in n.args[1:] if a.startswith("?"))
    elif n.kind == "eq":
        n.vars = frozenset(a for a in n.args if a.startswith("?"))
    else:
        v: set = set()
        for lit in n.lits:
            v |= lit.vars
        n.vars = frozenset(v - set(n.types))


def compile_goal(f: list) -> Callable[..., bool]:
    """Compile a goal formula once; the result ``test(src, binding=None) -> bool``."""
    root = _compile(f)

    def test(src: FactSource, binding: dict[str, str] | None = None) -> bool:
        return _eval(root, src, dict(binding or {}))

    return test


def _eval(n: _Node, src: FactSource, b: dict) -> bool:
    k = n.kind
    if k == "atom":
        return tuple(b.get(a, a) for a in n.args[1:]) in _fact_set(src, n.args[0])
    if k == "eq":
        return b.get(n.args[0], n.args[0]) == b.get(n.args[1], n.args[1])
    if k == "and":
        return all(_eval(g, src, b) for g in n.lits)
    if k == "or":
        return any(_eval(g, src, b) for g in n.lits)
    if k == "not":
        return not _eval(n.lits[0], src, b)
    if k == "imply":
        return (not _eval(n.lits[0], src, b)) or _eval(n.lits[1], src, b)
    return _join(n.lits, n.types, src, b)


def _fact_set(src: FactSource, pred: str) -> set:
    return src.fact_set(pred) if hasattr(src, "fact_set") else set(src.facts(pred))


def _join(lits: list, types: dict, src: FactSource, b: dict) -> bool:
    """Is there a binding of ``types``' variables that makes every literal of ``lits`` true?"""
    if not lits:
        unbound = [v for v in types if v not in b]
        if not unbound:
            return True
        v = unbound[0]
        return any(_join(lits, types, src, {**b, v: obj}) for obj in src.objects_of_type(types[v]))
    # 1. a literal whose variables are all bound: test it
    for k, lit in enumerate(lits):
        if lit.vars.issubset(b):
            if not _eval(lit, src, b):
                return False
            return _join(lits[:k] + lits[k + 1 :], types, src, b)
    # 2. a positive atom: enumerate the facts that match its bound arguments, from the
    #    predicate with the fewest facts (an empty one, e.g. no isHot yet, fails at once)
    best = None
    for k, lit in enumerate(lits):
        if lit.kind == "atom":
            size = src.size(lit.args[0]) if hasattr(src, "size") else len(src.facts(lit.args[0]))
            if best is None or size < best[0]:
                best = (size, k)
    if best is not None:
        k = best[1]
        lit, rest = lits[k], lits[:k] + lits[k + 1 :]
        args = lit.args[1:]
        for fact in src.facts(lit.args[0]):
            if len(fact) != len(args):
                continue
            nb = dict(b)
            for a, val in zip(args, fact):
                if a[0] == "?":
                    bound = nb.get(a)
                    if bound is None:
                        nb[a] = val
                    elif bound != val:
                        break
                elif a != val:
                    break
            else:
                if _join(rest, types, src, nb):
                    return True
        return False
    # 3. only compound literals with unbound variables left: bind one by its type
    v = next((v for v in types if v not in b), None)
    if v is None:
        raise PddlError(f"goal: unbound variables in {[lit.vars for lit in lits]}")
    return any(_join(lits, types, src, {**b, v: obj}) for obj in src.objects_of_type(types[v]))


GoalTest = Callable[[FactSource], bool]
