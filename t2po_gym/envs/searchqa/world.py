"""The offline Search-QA world: fictional entities, typed relations, passages and questions.

A seeded generator builds a small encyclopedia about invented people, places
(cities in invented countries), organisations and works, renders it as
Search-R1-style passages (``title`` + ``text``, two or more per entity) and asks
questions of four kinds about it:

* ``single``: one fact from one passage ("In what year was X founded?");
* ``bridge``: two hops through an intermediate entity ("In which city was the
  founder of X born?");
* ``comparison``: compare an attribute of two entities and report a third fact
  ("Where was the elder of A and B born?");
* ``yesno``: verify a fact, half of them true ("Is X headquartered in Y?").

Names are made of random syllables, so no model can answer from memory, and the
generator drops every question whose answer (or an alias) occurs in its own text.
Distractors are built in: some people share a full name (told apart by their
occupation in the title), some cities share a name (told apart by country), some
works share a title (told apart by kind), every shared name gets a disambiguation
passage, and attributes such as birthplaces and years repeat across entities.

Every question records its supporting passages and one search query per hop, so
retriever recall and the oracle agent need no annotation.

All text templates live in this module, in the ``_T_*`` constants.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from t2po_gym.envs.searchqa.data import QAData
from t2po_gym.envs.searchqa.metrics import answer_in_text, normalize_answer
from t2po_gym.envs.searchqa.records import QAItem
from t2po_gym.search.base import Document

__all__ = ["World", "WorldConfig", "Entity", "generate_world", "DATA_SOURCE"]

DATA_SOURCE = "t2po_world"

# ----------------------------------------------------------------- vocabulary
_ONSETS = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "gr",
           "kr", "st", "th", "sh", "tr", "vl", "h", "j", "c", "ph", "sk"]
_VOWELS = ["a", "e", "i", "o", "u", "ae", "io", "ei", "ou", "ya"]
_CODAS = ["", "", "", "", "", "n", "r", "l", "s", "th", "m", "nd", "rk", "x"]
_COUNTRY_SUFFIX = ["ia", "land", "ora", "istan", "avia", "mark"]
_CITY_PATTERNS = ["{}", "{}", "{}", "Port {}", "{} Falls", "{}ford", "{}heim", "New {}", "{}bury"]
_OCCUPATIONS = ["painter", "sculptor", "novelist", "poet", "architect", "engineer", "chemist",
                "botanist", "astronomer", "composer", "violinist", "politician", "diplomat",
                "historian", "mathematician", "physician", "sailor", "cartographer", "journalist",
                "photographer", "actor", "economist", "geologist", "philosopher"]
_INDUSTRIES = {
    "shipping": "Shipping", "textiles": "Textiles", "mining": "Mining", "publishing": "Press",
    "railways": "Railways", "brewing": "Breweries", "banking": "Bank", "insurance": "Assurance",
    "software": "Software", "pharmaceuticals": "Pharmaceuticals", "aviation": "Aeronautics",
    "glassmaking": "Glassworks", "shipbuilding": "Shipyards", "telegraphy": "Telegraph",
    "chocolate": "Confectioners", "optics": "Optical", "steel": "Steel", "perfume": "Perfumery",
}
_ORG_SUFFIX = ["Company", "Group", "Works", "Corporation", "Society", "Limited", "Holdings"]
_WORK_KINDS = {  # kind -> (verb phrase for the creator, genres)
    "novel": ("written by", ["mystery", "historical", "satirical", "epistolary", "adventure"]),
    "film": ("directed by", ["drama", "comedy", "documentary", "thriller", "western"]),
    "album": ("recorded by", ["jazz", "folk", "baroque", "electronic", "choral"]),
    "painting": ("painted by", ["landscape", "portrait", "still life", "allegorical", "marine"]),
    "opera": ("composed by", ["tragic", "comic", "romantic", "chamber", "heroic"]),
}
_WORK_VERBS = {"novel": "wrote", "film": "directed", "album": "recorded",
               "painting": "painted", "opera": "composed"}
_ADJECTIVES = ["Silent", "Glass", "Crimson", "Hollow", "Northern", "Last", "Burning", "Quiet",
               "Distant", "Golden", "Broken", "Winter", "Hidden", "Iron", "Pale", "Wandering",
               "Seventh", "Drowned", "Amber", "Velvet", "Restless", "Salt", "Copper", "Lonely",
               "Bright", "Sunken", "Paper", "Marble", "Scarlet", "Evening"]
_NOUNS = ["Harbor", "Orchard", "Lantern", "Cathedral", "River", "Garden", "Mirror", "Tide",
          "Meadow", "Bridge", "Compass", "Archive", "Violin", "Lighthouse", "Caravan", "Citadel",
          "Ferry", "Observatory", "Labyrinth", "Winter", "Sparrow", "Carnival", "Monastery",
          "Telescope", "Island", "Quarry", "Orchestra", "Tapestry", "Furnace", "Balcony"]
_GIVEN_INITIALS = "ABCDEFGHJKLMNPRSTVW"

# ------------------------------------------------------------------ templates
_T_COUNTRY = ("{name} is a country whose capital is {capital}. Its official name is the "
              "Republic of {name}.")
_T_CITY_OVERVIEW = ("{name} is a city in {country}. According to the last census it has a "
                    "population of about {population}. The city lies on the {river} river.")
_T_CITY_HISTORY = ("History of {name}: the settlement that became {name} was founded in "
                   "{founded}. It grew around a market on the {river} river and later became a "
                   "regional centre of {country}.")
_T_PERSON_BIO = ("{name} was {article} {occupation} from {country}. {Pron} was born in {city} in "
                 "{year} and spent {pos} early years there.")
_T_PERSON_CAREER = ("Career of {name}: the {occupation} {short} worked for {org} for most of "
                    "{pos} life. Among {pos} contemporaries was {colleague}.")
_T_ORG_OVERVIEW = ("{name} is a {industry} company headquartered in {city}, {country}. It is "
                   "known for its {product}.")
_T_ORG_HISTORY = ("History of {name}: the company was founded in {year} by {founder}. In its "
                  "first decade it competed with {rival}.")
_T_WORK_OVERVIEW = ("{name} is {article} {year} {kind} {verb} {creator}. It was first presented in "
                    "{city}.")
_T_WORK_RECEPTION = ("Reception of {name}: critics described the {kind} as a {genre} piece. "
                     "It is often compared with {other}.")
_T_DISAMBIGUATION = "{name} may refer to: {options}."

_Q = {  # question templates; hop queries are the sub-questions the oracle searches for
    "birthplace": "In which city was {p} born?",
    "birthyear": "In what year was {p} born?",
    "occupation": "What was the occupation of {p}?",
    "employer": "Which organisation did {p} work for?",
    "hq": "In which city is {o} headquartered?",
    "org_year": "In what year was {o} founded?",
    "founder": "Who founded {o}?",
    "creator": "Who {verb} the {kind} {w}?",
    "work_year": "In what year was the {kind} {w} released?",
    "city_country": "In which country is the city of {c}?",
    "city_year": "In what year was the city of {c} founded?",
    "b_founder_birthplace": "In which city was the founder of {o} born?",
    "b_employer_hq": "In which city is the organisation that {p} worked for headquartered?",
    "b_creator_birthyear": "In what year was the person who {verb} the {kind} {w} born?",
    "b_creator_employer": "Which organisation did the person who {verb} the {kind} {w} work for?",
    "b_person_country": "In which country is the city where {p} was born?",
    "c_elder_birthplace": "Where was the elder of {p1} and {p2} born?",
    "c_older_org_hq": "In which city is the older company, {o1} or {o2}, headquartered?",
    "c_earlier_work_creator": "Who created the earlier work: the {k1} {w1} or the {k2} {w2}?",
    "y_born_in": "Was {p} born in {c}?",
    "y_hq_in": "Is {o} headquartered in {c}?",
    "y_same_city": "Were {p1} and {p2} born in the same city?",
    "y_founded_before": "Was {o} founded before {year}?",
    "h_bio": "{p} born year city occupation",
    "h_career": "{p} career worked for",
    "h_org_overview": "{o} company headquartered in",
    "h_org_history": "history of {o} founded by",
    "h_work_overview": "{w} {kind} {verb_by}",
    "h_city_overview": "{c} city in country population",
    "h_city_history": "history of {c} founded",
}


@dataclass
class Entity:
    """One entity of the world. ``title`` is unique (disambiguated), ``name`` may be shared."""

    eid: int
    etype: str  # "country" | "city" | "person" | "org" | "work"
    name: str
    title: str
    attrs: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    passages: dict[str, str] = field(default_factory=dict)  # section -> passage id


@dataclass(frozen=True)
class WorldConfig:
    """Sizes of the generated world.

    Attributes:
        n_passages: approximate corpus size (the generator stops adding entities when reached).
        n_questions: total questions over both splits.
        test_fraction: share of questions in the ``test`` split (the rest is ``train``).
        seed: the world seed (entities, passages, questions and the split all follow it).
    """

    n_passages: int = 20_000
    n_questions: int = 5_000
    test_fraction: float = 0.2
    seed: int = 0

    def __post_init__(self):
        if self.n_passages < 100:
            raise ValueError(f"n_passages must be >= 100, got {self.n_passages}")
        if self.n_questions < 2:
            raise ValueError(f"n_questions must be >= 2, got {self.n_questions}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1), got {self.test_fraction}")


class World(QAData):
    """A generated corpus with its question splits (see the module docstring).

    It is a :class:`~t2po_gym.envs.searchqa.data.QAData` (documents, splits, fingerprint,
    ``doc_by_id``, ``questions``) that also keeps its config and entities.
    """

    def __init__(self, config: WorldConfig, entities: list[Entity], documents: list[Document],
                 splits: dict[str, list[QAItem]]):
        super().__init__(documents, splits, f"generated world ({config})")
        self.config = config
        self.entities = entities


# ----------------------------------------------------------------- generation
class _Namer:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def word(self, syllables: tuple[int, int] = (2, 3)) -> str:
        for _ in range(1000):
            n = self.rng.randint(*syllables)
            w = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) + self.rng.choice(_CODAS)
                        for _ in range(n))
            w = w.capitalize()
            if w not in self.used and 4 <= len(w) <= 11:
                self.used.add(w)
                return w
        raise RuntimeError("name space exhausted")


def generate_world(config: WorldConfig = WorldConfig()) -> World:
    """Build the world for ``config`` (deterministic in ``config``; ~1 s for 20k passages)."""
    rng = random.Random(config.seed)
    namer = _Namer(rng)
    ents: list[Entity] = []
    docs: list[Document] = []

    def add_passage(ent: Entity, section: str, text: str) -> None:
        pid = str(len(docs))
        docs.append(Document(pid, ent.title, text))
        ent.passages[section] = pid

    def new(etype: str, name: str, title: str, aliases: tuple[str, ...] = (), **attrs) -> Entity:
        e = Entity(len(ents), etype, name, title, dict(attrs), aliases)
        ents.append(e)
        return e

    budget = config.n_passages
    # fixed shares of the two-passage entities: people, organisations, cities, works
    n_units = max(40, budget // 2)
    n_country = max(4, min(30, n_units // 200))
    n_city = max(8, int(n_units * 0.15))
    n_org = max(8, int(n_units * 0.18))
    n_work = max(8, int(n_units * 0.20))
    n_person = max(12, n_units - n_city - n_org - n_work - n_country)

    countries = []
    for _ in range(n_country):
        nm = namer.word((1, 2)).rstrip("aeiouy") + rng.choice(_COUNTRY_SUFFIX)
        countries.append(new("country", nm, nm, (f"Republic of {nm}",)))

    cities: list[Entity] = []
    city_names: list[tuple[str, tuple[str, ...]]] = []
    for i in range(n_city):
        if city_names and rng.random() < 0.06:  # a namesake city in another country
            nm, aliases = rng.choice(city_names)
        else:
            stem = namer.word((2, 3))
            nm = rng.choice(_CITY_PATTERNS).format(stem)
            aliases = (stem,) if nm != stem else ()
            city_names.append((nm, aliases))
        country = rng.choice(countries)
        e = new("city", nm, nm, aliases,
                country=country.eid, founded=rng.randint(900, 1900),
                population=rng.randrange(20_000, 2_000_000, 1000), river=namer.word((2, 2)))
        cities.append(e)
    _disambiguate(cities, lambda e: ents[e.attrs["country"]].name)
    for c in countries:
        c.attrs["capital"] = rng.choice(cities).eid

    people: list[Entity] = []
    full_names: list[str] = []
    for _ in range(n_person):
        if full_names and rng.random() < 0.08:  # a namesake with another occupation
            nm = rng.choice(full_names)
        else:
            first, last = namer.word((2, 2)), namer.word((2, 3))
            nm = f"{first} {rng.choice(_GIVEN_INITIALS)}. {last}"
            full_names.append(nm)
        first, _, last = nm.split(" ")
        pe = new("person", nm, nm, (f"{first} {last}",), occupation=rng.choice(_OCCUPATIONS),
                 year=rng.randint(1780, 1990), city=rng.choice(cities).eid,
                 pron=rng.choice([("He", "his"), ("She", "her")]), last=last)
        people.append(pe)
    # namesakes must differ in occupation, since it disambiguates their titles
    by_name: dict[str, list[Entity]] = {}
    for p in people:
        by_name.setdefault(p.name, []).append(p)
    for group in by_name.values():
        free = [o for o in _OCCUPATIONS]
        rng.shuffle(free)
        if len(group) > 1:
            for p, occ in zip(group, free):
                p.attrs["occupation"] = occ
    _disambiguate(people, lambda e: e.attrs["occupation"])

    orgs: list[Entity] = []
    org_names: set[str] = set()
    for _ in range(n_org):
        ind = rng.choice(list(_INDUSTRIES))
        for _ in range(100):
            stem = rng.choice(people).attrs["last"] if rng.random() < 0.5 else namer.word((2, 3))
            short = f"{stem} {_INDUSTRIES[ind]}"
            nm = f"{short} {rng.choice(_ORG_SUFFIX)}"
            if short not in org_names:
                break
        org_names.add(short)
        orgs.append(new("org", nm, nm, (short,), industry=ind, year=rng.randint(1800, 2000),
                        city=rng.choice(cities).eid, founder=rng.choice(people).eid,
                        product=rng.choice(_NOUNS).lower() + "s"))
    for p in people:
        p.attrs["org"] = rng.choice(orgs).eid

    works: list[Entity] = []
    titles: list[str] = []
    for _ in range(n_work):
        kind = rng.choice(list(_WORK_KINDS))
        if titles and rng.random() < 0.06:
            nm = rng.choice(titles)
        else:
            for _ in range(100):
                form = rng.random()
                a, n = rng.choice(_ADJECTIVES), rng.choice(_NOUNS)
                if form < 0.45:
                    nm = f"The {a} {n}"
                elif form < 0.7:
                    nm = f"{a} {n} of {namer.word((2, 2))}"
                else:
                    nm = f"The {n} of {rng.choice(cities).name.split()[-1]}"
                if nm not in titles:
                    break
            titles.append(nm)
        works.append(new("work", nm, nm, (), kind=kind, year=rng.randint(1850, 2020),
                         creator=rng.choice(people).eid, city=rng.choice(cities).eid,
                         genre=rng.choice(_WORK_KINDS[kind][1])))
    _disambiguate_works(works)

    # ------------------------------------------------------------- passages
    E = ents
    for c in countries:
        add_passage(c, "overview", _T_COUNTRY.format(name=c.name, capital=E[c.attrs["capital"]].name))
    for c in cities:
        a = c.attrs
        country = E[a["country"]].name
        add_passage(c, "overview", _T_CITY_OVERVIEW.format(
            name=c.name, country=country, population=f"{a['population']:,}", river=a["river"]))
        add_passage(c, "history", _T_CITY_HISTORY.format(
            name=c.name, founded=a["founded"], river=a["river"], country=country))
    for p in people:
        a = p.attrs
        city = E[a["city"]]
        add_passage(p, "bio", _T_PERSON_BIO.format(
            name=p.name, occupation=a["occupation"], country=E[city.attrs["country"]].name,
            article="an" if a["occupation"][0] in "aeiou" else "a",
            Pron=a["pron"][0], city=city.name, year=a["year"], pos=a["pron"][1]))
        colleague = rng.choice(people)
        add_passage(p, "career", _T_PERSON_CAREER.format(
            name=p.name, occupation=a["occupation"], short=a["last"], org=E[a["org"]].name,
            pos=a["pron"][1], colleague=colleague.name if colleague is not p else "no one of note"))
    for o in orgs:
        a = o.attrs
        city = E[a["city"]]
        add_passage(o, "overview", _T_ORG_OVERVIEW.format(
            name=o.name, industry=a["industry"], city=city.name,
            country=E[city.attrs["country"]].name, product=a["product"]))
        add_passage(o, "history", _T_ORG_HISTORY.format(
            name=o.name, year=a["year"], founder=E[a["founder"]].name, rival=rng.choice(orgs).name))
    for w in works:
        a = w.attrs
        add_passage(w, "overview", _T_WORK_OVERVIEW.format(
            name=w.name, year=a["year"], kind=a["kind"], verb=_WORK_KINDS[a["kind"]][0],
            article="an" if str(a["year"]).startswith(("8", "11", "18")) else "a",
            creator=E[a["creator"]].name, city=E[a["city"]].name))
        add_passage(w, "reception", _T_WORK_RECEPTION.format(
            name=w.name, kind=a["kind"], genre=a["genre"], other=rng.choice(works).name))
    # one disambiguation passage per shared name
    shared: dict[tuple[str, str], list[Entity]] = {}
    for e in ents:
        if e.title != e.name:
            shared.setdefault((e.etype, e.name), []).append(e)
    for (_, name), group in sorted(shared.items()):
        holder = Entity(-1, "disambiguation", name, name)
        add_passage(holder, "disambiguation", _T_DISAMBIGUATION.format(
            name=name, options="; ".join(e.title for e in group)))

    world = World(config, ents, docs, {})
    questions = _generate_questions(world, rng, config.n_questions)
    rng.shuffle(questions)
    n_test = max(1, int(round(len(questions) * config.test_fraction)))
    test = [_with_qid(q, f"test-{i}") for i, q in enumerate(questions[:n_test])]
    train = [_with_qid(q, f"train-{i}") for i, q in enumerate(questions[n_test:])]
    world.splits = {"train": train, "test": test}
    return world


def _with_qid(q: QAItem, qid: str) -> QAItem:
    return QAItem(qid, q.question, q.golden_answers, q.data_source, q.kind, q.supports, q.hop_queries)


def _disambiguate(group: list[Entity], label) -> None:
    counts: dict[str, int] = {}
    for e in group:
        counts[e.name] = counts.get(e.name, 0) + 1
    for e in group:
        if counts[e.name] > 1:
            e.title = f"{e.name} ({label(e)})"


def _disambiguate_works(works: list[Entity]) -> None:
    by_name: dict[str, list[Entity]] = {}
    for w in works:
        by_name.setdefault(w.name, []).append(w)
    for group in by_name.values():
        if len(group) < 2:
            continue
        kinds = list(_WORK_KINDS)
        # namesake works get distinct kinds so "(kind)" disambiguates them
        for w, k in zip(group, kinds):
            w.attrs["kind"] = k
            w.attrs["genre"] = _WORK_KINDS[k][1][w.eid % len(_WORK_KINDS[k][1])]
            w.title = f"{w.name} ({k})"
        for w in group[len(kinds):]:  # more namesakes than kinds: give up the title share
            w.title = f"{w.name} ({w.attrs['kind']}, {w.attrs['year']})"


# ------------------------------------------------------------------ questions
def _answers(e: Entity) -> tuple[str, ...]:
    return (e.name,) + tuple(a for a in e.aliases if a != e.name)


def _generate_questions(world: World, rng: random.Random, n: int) -> list[QAItem]:
    E = world.entities
    people = [e for e in E if e.etype == "person"]
    orgs = [e for e in E if e.etype == "org"]
    works = [e for e in E if e.etype == "work"]
    cities = [e for e in E if e.etype == "city"]

    def hq(p: Entity) -> str:
        return _Q["h_bio"].format(p=p.title)

    def h_career(p: Entity) -> str:
        return _Q["h_career"].format(p=p.title)

    def h_org_o(o: Entity) -> str:
        return _Q["h_org_overview"].format(o=o.title)

    def h_org_h(o: Entity) -> str:
        return _Q["h_org_history"].format(o=o.title)

    def h_work(w: Entity) -> str:
        k = w.attrs["kind"]
        return _Q["h_work_overview"].format(w=w.title, kind=k, verb_by=_WORK_KINDS[k][0])

    def single() -> tuple | None:
        t = rng.choice(["birthplace", "birthyear", "occupation", "employer", "hq", "org_year",
                        "founder", "creator", "work_year", "city_country", "city_year"])
        if t in ("birthplace", "birthyear", "occupation", "employer"):
            p = rng.choice(people)
            a = p.attrs
            ans = {"birthplace": lambda: _answers(E[a["city"]]),
                   "birthyear": lambda: (str(a["year"]),),
                   "occupation": lambda: (a["occupation"],),
                   "employer": lambda: _answers(E[a["org"]])}[t]()
            sec, hop = ("career", h_career(p)) if t == "employer" else ("bio", hq(p))
            return _Q[t].format(p=p.title), ans, (p.passages[sec],), (hop,)
        if t in ("hq", "org_year", "founder"):
            o = rng.choice(orgs)
            a = o.attrs
            if t == "hq":
                return _Q[t].format(o=o.title), _answers(E[a["city"]]), (o.passages["overview"],), (h_org_o(o),)
            ans = (str(a["year"]),) if t == "org_year" else _answers(E[a["founder"]])
            return _Q[t].format(o=o.title), ans, (o.passages["history"],), (h_org_h(o),)
        if t in ("creator", "work_year"):
            w = rng.choice(works)
            a = w.attrs
            ans = _answers(E[a["creator"]]) if t == "creator" else (str(a["year"]),)
            q = _Q[t].format(verb=_WORK_VERBS[a["kind"]], kind=a["kind"], w=w.name)
            return q, ans, (w.passages["overview"],), (h_work(w),)
        c = rng.choice(cities)
        if t == "city_country":
            return (_Q[t].format(c=c.title), _answers(E[c.attrs["country"]]), (c.passages["overview"],),
                    (_Q["h_city_overview"].format(c=c.title),))
        return (_Q[t].format(c=c.title), (str(c.attrs["founded"]),), (c.passages["history"],),
                (_Q["h_city_history"].format(c=c.title),))

    def bridge() -> tuple | None:
        t = rng.choice(["b_founder_birthplace", "b_employer_hq", "b_creator_birthyear",
                        "b_creator_employer", "b_person_country"])
        if t == "b_founder_birthplace":
            o = rng.choice(orgs)
            f = E[o.attrs["founder"]]
            return (_Q[t].format(o=o.title), _answers(E[f.attrs["city"]]),
                    (o.passages["history"], f.passages["bio"]), (h_org_h(o), hq(f)))
        if t == "b_employer_hq":
            p = rng.choice(people)
            o = E[p.attrs["org"]]
            return (_Q[t].format(p=p.title), _answers(E[o.attrs["city"]]),
                    (p.passages["career"], o.passages["overview"]), (h_career(p), h_org_o(o)))
        if t == "b_person_country":
            p = rng.choice(people)
            c = E[p.attrs["city"]]
            return (_Q[t].format(p=p.title), _answers(E[c.attrs["country"]]),
                    (p.passages["bio"], c.passages["overview"]),
                    (hq(p), _Q["h_city_overview"].format(c=c.title)))
        w = rng.choice(works)
        k = w.attrs["kind"]
        cr = E[w.attrs["creator"]]
        q = _Q[t].format(verb=_WORK_VERBS[k], kind=k, w=w.name)
        if t == "b_creator_birthyear":
            return q, (str(cr.attrs["year"]),), (w.passages["overview"], cr.passages["bio"]), (h_work(w), hq(cr))
        return (q, _answers(E[cr.attrs["org"]]), (w.passages["overview"], cr.passages["career"]),
                (h_work(w), h_career(cr)))

    def comparison() -> tuple | None:
        t = rng.choice(["c_elder_birthplace", "c_older_org_hq", "c_earlier_work_creator"])
        if t == "c_elder_birthplace":
            p1, p2 = rng.sample(people, 2)
            if p1.attrs["year"] == p2.attrs["year"] or p1.attrs["city"] == p2.attrs["city"]:
                return None
            elder = min((p1, p2), key=lambda p: p.attrs["year"])
            return (_Q[t].format(p1=p1.title, p2=p2.title), _answers(E[elder.attrs["city"]]),
                    (p1.passages["bio"], p2.passages["bio"]), (hq(p1), hq(p2)))
        if t == "c_older_org_hq":
            o1, o2 = rng.sample(orgs, 2)
            if o1.attrs["year"] == o2.attrs["year"] or o1.attrs["city"] == o2.attrs["city"]:
                return None
            older = min((o1, o2), key=lambda o: o.attrs["year"])
            return (_Q[t].format(o1=o1.title, o2=o2.title), _answers(E[older.attrs["city"]]),
                    (o1.passages["history"], o2.passages["history"], older.passages["overview"]),
                    (h_org_h(o1), h_org_h(o2), h_org_o(older)))
        w1, w2 = rng.sample(works, 2)
        if w1.attrs["year"] == w2.attrs["year"] or w1.attrs["creator"] == w2.attrs["creator"]:
            return None
        earlier = min((w1, w2), key=lambda w: w.attrs["year"])
        return (_Q[t].format(k1=w1.attrs["kind"], w1=w1.name, k2=w2.attrs["kind"], w2=w2.name),
                _answers(E[earlier.attrs["creator"]]),
                (w1.passages["overview"], w2.passages["overview"]), (h_work(w1), h_work(w2)))

    def yesno() -> tuple | None:
        t = rng.choice(["y_born_in", "y_hq_in", "y_same_city", "y_founded_before"])
        truth = rng.random() < 0.5
        ans = ("yes",) if truth else ("no",)
        if t == "y_born_in":
            p = rng.choice(people)
            c = E[p.attrs["city"]] if truth else rng.choice(cities)
            if not truth and c.eid == p.attrs["city"]:
                return None
            return _Q[t].format(p=p.title, c=c.title), ans, (p.passages["bio"],), (hq(p),)
        if t == "y_hq_in":
            o = rng.choice(orgs)
            c = E[o.attrs["city"]] if truth else rng.choice(cities)
            if not truth and c.eid == o.attrs["city"]:
                return None
            return _Q[t].format(o=o.title, c=c.title), ans, (o.passages["overview"],), (h_org_o(o),)
        if t == "y_same_city":
            p1 = rng.choice(people)
            if truth:
                mates = [p for p in people if p.attrs["city"] == p1.attrs["city"] and p is not p1]
                if not mates:
                    return None
                p2 = rng.choice(mates)
            else:
                p2 = rng.choice(people)
                if p2.attrs["city"] == p1.attrs["city"]:
                    return None
            return (_Q[t].format(p1=p1.title, p2=p2.title), ans, (p1.passages["bio"], p2.passages["bio"]),
                    (hq(p1), hq(p2)))
        o = rng.choice(orgs)
        y = o.attrs["year"] + (rng.randint(1, 40) if truth else -rng.randint(0, 40))
        return _Q[t].format(o=o.title, year=y), ans, (o.passages["history"],), (h_org_h(o),)

    makers = [("single", single, 0.35), ("bridge", bridge, 0.30), ("comparison", comparison, 0.15),
              ("yesno", yesno, 0.20)]
    out: list[QAItem] = []
    seen: set[str] = set()
    for kind, make, share in makers:
        target = int(round(n * share)) if kind != "yesno" else n - len(out)
        made, tries = 0, 0
        while made < target and tries < target * 50 + 100:
            tries += 1
            r = make()
            if r is None:
                continue
            q, ans, supports, hops = r
            key = normalize_answer(q)
            if key in seen or any(answer_in_text(a, q) for a in ans):
                continue
            seen.add(key)
            out.append(QAItem("", q, tuple(ans), DATA_SOURCE, kind, tuple(supports), tuple(hops)))
            made += 1
    return out
