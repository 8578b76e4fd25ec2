"""Every sentence the native ALFWorld engine prints, in one place.

The wording is ALFWorld's (its ``alfred.twl2`` grammar), so observations match the
TextWorld reference engine character for character. Data version 2.1.1 (ALFWorld's
games as released) differs in three places, kept here as ``*_211``: the arrival line
names the location ("You arrive at loc 12."), placing is "put X in/on Y" and there is
no ``help``.
"""

from __future__ import annotations

INTRO = "-= Welcome to TextWorld, ALFRED! =-\n\n{look}\n\n{task}"
TASK = "Your task is to: {description}."
NOTHING_HAPPENS = "Nothing happens."

LOOK_MIDDLE = "You are in the middle of a room. Looking quickly around you, you see {things}."
LOOK_FACING = "You are facing the {receptacle}. Next to it, you see {things}."
# several receptacles can share a location in real games: "the cabinet 2, and cabinet 1"


ARRIVE = "You arrive at {receptacle}. {contents}"
ARRIVE_211 = "You arrive at {location}. {contents}"
OPEN = "You open the {receptacle}. {contents}"
CLOSE = "You close the {receptacle}."
TAKE = "You pick up the {obj} from the {receptacle}."
MOVE = "You move the {obj} to the {receptacle}."
PUT_211 = "You put the {obj} in/on the {receptacle}."
MOVE_COMMAND = "move {obj} to {receptacle}"
PUT_COMMAND_211 = "put {obj} in/on {receptacle}"
HEAT = "You heat the {obj} using the {receptacle}."
COOL = "You cool the {obj} using the {receptacle}."
CLEAN = "You clean the {obj} using the {receptacle}."
SLICE = "You sliced the {obj} with the {knife}."
TOGGLE_ON = "You turn on the {obj}."

RECEPTACLE_OPEN = "The {receptacle} is open. In it, you see {things}."
RECEPTACLE_CLOSED = "The {receptacle} is closed."
RECEPTACLE_SURFACE = "On the {receptacle}, you see {things}."

CARRYING = "You are carrying: {things}."
CARRYING_NOTHING = "You are not carrying anything."

# examine <object>: the first matching line wins (hot, cool, clean, sliced, toggled).
EXAMINE_OBJECT = (
    (("clean", "hot", "sliced"), "This is a hot and clean sliced {obj}."),
    (("clean", "cool", "sliced"), "This is a cool and clean sliced {obj}."),
    (("clean", "sliced"), "This is a clean sliced {obj}."),
    (("hot", "sliced"), "This is a hot sliced {obj}."),
    (("cool", "sliced"), "This is a cool sliced {obj}."),
    (("clean", "hot"), "This is a hot and clean {obj}."),
    (("clean", "cool"), "This is a cool and clean {obj}."),
    (("hot",), "This is a hot {obj}."),
    (("clean",), "This is a clean {obj}."),
    (("cool",), "This is a cold {obj}."),
)
# A receptacle object (bowl, pan, mug ...) is described first, whatever its state.
RECEPTACLE_OBJECT = "This is a normal {obj}. In it, you see {things}."
LAMP_ON = "This {obj} is on."
# "This {obj} is off." exists in the grammar but its condition (not_istoggled) never holds in
# TextWorld's state (negated facts appear only once deleted, and isToggled is never deleted).
SLICED = "This is a sliced {obj}."
PLAIN = "There's nothing special about {obj}."

HELP = (
    "Available commands:\n"
    "  look:                             look around your current location\n"
    "  inventory:                        check your current inventory\n"
    "  go to (receptacle):               move to a receptacle\n"
    "  open (receptacle):                open a receptacle\n"
    "  close (receptacle):               close a receptacle\n"
    "  take (object) from (receptacle):  take an object from a receptacle\n"
    "  move (object) to (receptacle):  place an object in or on a receptacle\n"
    "  examine (something):              examine a receptacle or an object\n"
    "  use (object):                     use an object\n"
    "  heat (object) with (receptacle):  heat an object using a receptacle\n"
    "  clean (object) with (receptacle): clean an object using a receptacle\n"
    "  cool (object) with (receptacle):  cool an object using a receptacle\n"
    "  slice (object) with (object):     slice an object using a sharp object\n"
)


def enumerate_things(names: list[str]) -> str:
    """ALFWorld's list style: "nothing", "a x", "a x, and a y", "a x, a y, and a z"."""
    items = [f"a {n}" for n in names]
    if not items:
        return "nothing"
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + ", and " + items[-1]


def join_names(names: list[str]) -> str:
    """The same list style without articles ("cabinet 2, and cabinet 1"), as in "You are facing the ..."."""
    if not names:
        return "nothing"
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + ", and " + names[-1]
