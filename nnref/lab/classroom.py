"""The teacher's view of the class (``/class``): every page open on the lab as a seat, and the teacher's hand on all
of them.

Because the lab trains on the server, the server knows every student's network while they play.  A page that opens
its socket takes a :class:`Seat` in the :class:`Classroom` ("Student 1", "Student 2" … or the name its student
typed) and gives it back when it closes.  The teacher's page reads :meth:`Classroom.tiles` a few times a second —
each seat's set-up in words, epoch, test accuracy, a short loss curve, whether it plays, diverged or stood still,
and the weights of its network, from which the teacher's page draws the decision boundary as the playground draws
its own heat map — and sends the teacher's actions (:data:`ACTIONS`), each checked like every other message.

The teacher's rules (:class:`Rules`) hold for every page until the teacher changes them, and a page that joins —
a new student, or a reload — is told them first: the class paused (a page cannot play), a preset locked (a page
cannot change its points or its network until the teacher frees it; the recipe stays the student's), groups of
controls hidden.  Sending a set-up is an event: every playground page opens it, as if its student had followed
the link, and keeps it through reloads because its address now holds it.  Each action reaches the students' pages
as one line ("Your teacher paused the class").

What a student's page receives of the class is only the rules and that line: never another page's name, weights or
set-up (the tiles go to the teacher's socket alone).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .state import DEFAULTS, FIELDS, HIDEABLE, PRESETS, BadMessage, read_message

__all__ = ["Classroom", "Seat", "Rules", "ACTIONS", "STALE_SECONDS", "parse_action", "setup_words", "preset_of"]

#: A page whose epoch and set-up have not changed for this long is marked "nothing changed for a while".
STALE_SECONDS = 60.0
#: The teacher's actions and the fields each carries (beyond "type").
ACTIONS = {
    "send": {"preset", "same_weights"},
    "pause": set(),
    "play": set(),
    "hide": {"groups"},
    "lock": {"preset"},
    "free": set(),
    "names": {"shown"},
}


@dataclass
class Rules:
    """What the teacher holds every page to, until they change it."""

    paused: bool = False
    hidden: tuple[str, ...] = ()
    locked: str | None = None  # a preset's name
    seed: int | None = None  # the locked preset's seed, when the teacher sent it with the same weights for all

    def for_page(self, line: str = "", setup: str | None = None) -> dict:
        """The message a student's page gets: the rules, the line that says what changed, a set-up to open."""
        lock = None
        if self.locked:
            title, link = PRESETS[self.locked]["title"], _link(self.locked, self.seed)
            lock = {"preset": self.locked, "title": title, "link": link}
        return {"type": "teacher", "line": line, "paused": self.paused, "hide": list(self.hidden), "lock": lock} | (
            {"setup": setup} if setup else {}
        )


@dataclass
class Seat:
    """One open page: its number in the class, its kind ("playground" or "mnist"), its session (which answers
    ``summary()``), how to tell it something (``post(message)``: into the page's own queue, sent in its own loop),
    and the name its student typed ("" for none)."""

    number: int
    kind: str
    session: object
    post: Callable[[dict], None]
    name: str = ""
    joined: float = field(default_factory=time.monotonic)
    seen: tuple = ()  # the last (set-up, epoch) read, and since when
    since: float = field(default_factory=time.monotonic)
    resume: bool = False  # it played when the teacher paused the class

    def label(self, names: bool) -> str:
        return self.name if names and self.name else f"Student {self.number}"


def parse_action(text: str) -> dict:
    """A teacher's message, checked: its type one of :data:`ACTIONS`, its fields those the type carries and valid."""
    message = read_message(text, ACTIONS, 4096, lambda state: state)
    kind = message["type"]
    if kind in ("send", "lock") and message.get("preset") not in PRESETS:
        raise BadMessage(f"preset must be one of {', '.join(PRESETS)}, got {message.get('preset')!r}")
    if kind == "send" and not isinstance(message.get("same_weights", False), bool):
        raise BadMessage("same_weights must be true or false")
    if kind == "hide":
        groups = message.get("groups")
        if not isinstance(groups, list) or not all(g in HIDEABLE for g in groups):
            raise BadMessage(f"groups must be a list of {', '.join(HIDEABLE)}, got {groups!r}")
    if kind == "names" and not isinstance(message.get("shown"), bool):
        raise BadMessage("shown must be true or false")
    return message


def setup_words(state: dict) -> str:
    """A playground page's set-up in words: "spirals, 3 classes · network 8-8-6 tanh · lr 0.03"."""
    data = "your own points" if state["dataset"] == "custom" else state["dataset"]
    data += f", {state['classes']} classes" if state["classes"] != 2 else ""
    hidden = "-".join(map(str, state["hidden"])) or "no hidden layer"
    model = {
        "line": "the line",
        "mlp": f"network {hidden} {state['activation']}",
        "knn": f"KNN, k = {state['k']}",
        "compare": f"side by side (network {hidden} {state['activation']})",
    }[state["model"]]
    return f"{data} · {model}" + (f" · lr {state['lr']:g}" if state["model"] != "knn" else "")


class Classroom:
    """Every open page's seat, the teacher's rules, and what the teacher's page shows.  Used from the server's one
    event loop (joins, leaves, actions, tiles); a seat's session is read between its own steps."""

    def __init__(self) -> None:
        self.seats: dict[int, Seat] = {}
        self.rules = Rules()
        self._numbers = itertools.count(1)
        self.sent = 0  # set-ups sent so far: "same weights" gives every page the seed of this one
        self.last_sent: tuple[str, int | None] | None = None  # (preset, seed) of the last set-up sent

    # -- pages come and go -------------------------------------------------------------------------------
    def join(self, kind: str, session, post: Callable[[dict], None]) -> Seat:
        """A page opened: its seat, numbered in the order pages joined.  The page is told the rules at once."""
        seat = Seat(next(self._numbers), kind, session, post)
        self.seats[seat.number] = seat
        if self.rules != Rules():
            post(self.rules.for_page())
        return seat

    def leave(self, seat: Seat) -> None:
        self.seats.pop(seat.number, None)

    def rename(self, seat: Seat, name) -> None:
        """The display name a student typed (optional; 40 characters at most, no control characters)."""
        if not isinstance(name, str) or len(name) > 40 or any(ord(ch) < 32 for ch in name):
            raise BadMessage("a name is text of at most 40 characters")
        seat.name = name.strip()

    # -- what pages may do -------------------------------------------------------------------------------
    def refusal(self, seat: Seat, kind: str, state: dict | None = None) -> str | None:
        """Why the teacher's rules refuse a page's message (None: they allow it).  ``state``: the page's whole
        state after a change it asks for."""
        if kind in ("play", "step") and self.rules.paused:
            return "Your teacher paused the class: the page plays again when they let it."
        if kind == "config" and self.rules.locked and seat.kind == "playground" and state is not None:
            locked = PRESETS[self.rules.locked]
            held = locked_setup(self.rules.locked, self.rules.seed)
            wanted = {name: value for name, value in held.items() if state[name] != value}
            if wanted:
                return (
                    f"Your teacher locked this set-up ({locked['title']}): the points and the network stay as they "
                    "are until your teacher frees it. The learning rate and the rest of the recipe are yours."
                )
        return None

    # -- the teacher's hand ------------------------------------------------------------------------------
    def act(self, message: dict) -> str:
        """Carry out a checked teacher's action (:func:`parse_action`) on every page; returns the line the students'
        pages show ("" for an action only the teacher's page sees)."""
        kind, rules = message["type"], self.rules
        setup = None
        if kind == "names":
            return ""
        if kind == "pause":
            rules.paused = True
            for seat in self.seats.values():
                seat.resume = bool(getattr(seat.session, "playing", False))
                seat.session.playing = False
            line = "Your teacher paused the class."
        elif kind == "play":
            rules.paused = False
            for seat in self.seats.values():
                seat.session.playing, seat.resume = seat.resume, False
            line = "Your teacher let the class play again."
        elif kind == "hide":
            rules.hidden = tuple(message["groups"])
            line = "Your teacher changed which controls are shown." if rules.hidden else "Every control is shown."
        elif kind == "lock":
            preset = message["preset"]
            seed = self.last_sent[1] if self.last_sent and self.last_sent[0] == preset else None
            rules.locked, rules.seed, setup = preset, seed, _link(preset, seed)
            line = f"Your teacher locked the class on {PRESETS[rules.locked]['title']}."
        elif kind == "free":
            rules.locked = rules.seed = None
            line = "Your teacher freed the set-up: every control is yours again."
        else:  # send
            self.sent += 1
            seed = 1000 + self.sent if message.get("same_weights") else None
            setup, self.last_sent = _link(message["preset"], seed), (message["preset"], seed)
            line = f"Your teacher opened {PRESETS[message['preset']]['title']} for the class" + (
                ", with the same starting weights for everyone." if seed is not None else "."
            )
        for seat in self.seats.values():
            seat.post(rules.for_page(line, setup if seat.kind == "playground" else None))
        return line

    # -- what the teacher sees ---------------------------------------------------------------------------
    def tiles(self, names: bool = True, now: float | None = None) -> dict:
        """Every seat as a tile (its number, label, kind and its session's summary, marked stale when nothing
        changed for :data:`STALE_SECONDS`), and the rules."""
        now = time.monotonic() if now is None else now
        pages = []
        for seat in self.seats.values():
            summary = seat.session.summary()
            seen = (summary.get("setup"), summary.get("epoch"), summary.get("steps"))
            if seen != seat.seen:
                seat.seen, seat.since = seen, now
            stale = now - seat.since >= STALE_SECONDS
            tile = {"seat": seat.number, "label": seat.label(names), "kind": seat.kind, "stale": stale}
            pages.append(tile | summary)
        rules = {"paused": self.rules.paused, "hidden": list(self.rules.hidden), "locked": self.rules.locked}
        return {"type": "class", "pages": pages, "rules": rules, "names": names}


def locked_setup(preset: str, seed: int | None = None) -> dict:
    """The fields of the points and the network that a locked preset holds (the defaults, overlaid with the
    preset's own, and the seed the teacher sent it with)."""
    state = {**DEFAULTS, **PRESETS[preset]["state"]} | ({"seed": seed} if seed is not None else {})
    return {name: state[name] for name in DEFAULTS if FIELDS[name].group in ("data", "network")}


def preset_of(state: dict) -> str | None:
    """The title of the preset a page's state is (every field of the server's the preset sets, as it sets it; of two
    that match, the one that sets more: *Fit the line by hand* is *The line on the blobs* with weights), or None."""
    matches = [
        (sum(name in DEFAULTS for name in preset["state"]), preset["title"])
        for preset in PRESETS.values()
        if all(state.get(name) == value for name, value in preset["state"].items() if name in DEFAULTS)
    ]
    return max(matches)[1] if matches else None


def _link(preset: str, seed: int | None = None) -> str:
    """The address fragment a page opens: the preset, with a seed that gives every page the same points and the
    same starting weights when asked."""
    return f"#preset={preset}" + (f"&seed={seed}" if seed is not None else "")
