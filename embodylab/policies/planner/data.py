"""Planner data: (scene facts, instruction, oracle plan) examples from generated apartments.

**Start states without physics.** An apartment's start state is known symbolically: every object stands on
the top it was placed on (`Apartment.object_surfaces`), every door and drawer is shut (joint position 0,
below `closed_below`), the robot stands at its mount in the kitchen. `start_atoms` and `start_scene_graph`
compute the atoms and the scene graph from `generate_apartment(seed)` alone (under 1 ms; compiling and
resetting an env is 10-20 ms per apartment). The graph is `HouseholdEnv.scene_graph()` after
`reset(options={"apartment_seed": seed})` except the robot's `tcp` and `gripper_width`, which need the
arm's forward kinematics and are left out (nothing in `scene_facts` or the oracle reads them); a test holds
the rest equal for several seeds.

**References.** An entity is named by a reference expression (JSON: nested dicts) that `render` writes in
English and `resolve` evaluates against the scene graph, with definite-article semantics: every nested
reference must pick out exactly one entity, or the whole picks out nothing. A reference is used only when
it picks out exactly the intended entity. Its *hop count* is the number of relation edges it walks from the
entity to the anchors it names: `on` a fixture, `in` a room, `of` (a drawer of its fixture), `colour_of`
(an object of the colour of another) count 1 each, a room `k` doors from another counts `k`; names,
categories, colours and sizes count 0. E.g. "the small blue glass" 0, "the bottle in the bedroom" 1, "the
object on the shelf in the room next to the kitchen" 3, "the mug that has the colour of the book on the
table in the kitchen" 3. An example's `hops` is the largest of its references'.

**Words** (`OBJECT_WORDS`, `USE_CLASSES`, `FIXTURE_WORDS`, `GENERIC_NOUNS`): each category's name phrase and
synonyms, categories of use over the categories `apartment.CATEGORIES` has ("thing to drink from": mug,
cup, glass; "piece of fruit": apple, orange, lemon, pear, banana; ...), generic nouns ("object"), and the
instruction templates (`PLACE_TEMPLATES`, `STOW_TEMPLATES`, `TIDY_OPENINGS`, `TIDY_CLOSINGS`).

**Goals and plans.** `pick_place`: `("on", obj, top)`; `stow`: `("in", obj, drawer)` and the drawer closed;
`tidy`: 1-5 misplaced objects put where their category belongs (`Category.belongs_on`, a home in the
object's room when there is one, as `HouseholdTidy-v0` chooses), the drawer closed when one is loaded.
Plans are the oracle's BFS (`oracle.plan`, unchanged: within `MAX_PLAN_LENGTH`; a draw needing a longer
(sub-)plan is dropped). A tidy task is planned as
a chain: one shortest sub-plan per object going onto a top (in instruction order), then one for all the
objects going into the drawer together (so it is opened and closed once), each from the state the previous
one leaves (`simulate`); the concatenation is simulated over the operators and must reach the whole goal.
It is valid but not always the shortest plan overall (BFS over five objects at once is too slow).

**Infeasible instructions** (`INFEASIBLE_FRACTION` of each split) answer `cannot: <reason>`: `no such
object` (an object reference that picks out nothing, e.g. a colour the apartment's mugs do not have),
`no such place` (a furniture reference that picks out nothing: a sofa, the table in a room without one), and
`unreachable goal` (on a fixture without a top or into one without a drawer; the oracle finds no plan).

**Splits** (`generate_dataset`): `train` (references of at most `TRAIN_MAX_HOPS` hops, plans of at most
`TRAIN_MAX_SKILLS` skills, apartments from the train pool), `heldout_apartments` (as train, in apartments
never in train), `deeper` (one reference of more than `TRAIN_MAX_HOPS` hops, train apartments), `longer`
(tidy tasks of more than `TRAIN_MAX_SKILLS` skills, train apartments). Every example is drawn from its own
generator seeded by (seed, split, index): the same seed gives the same dataset.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from tqdm import tqdm

from embodylab.core.geometry import wrap_angle
from embodylab.envs.household.apartment import (
    CATEGORIES,
    CATEGORY_BY_NAME,
    Apartment,
    generate_apartment,
)
from embodylab.envs.household.predicates import (
    AT_DISTANCE,
    AT_YAW,
    IN_HEADROOM,
    ROBOT,
    Atom,
    scene_graph_of,
)
from embodylab.policies.planner.language import (
    CANNOT_REASONS,
    Plan,
    PlanCall,
    format_plan,
    from_oracle,
)
from embodylab.policies.planner.scene import entities, object_places, scene_facts, size_word
from embodylab.policies.planner.verifier import verify
from embodylab.skills.household import oracle

# ---- start states without physics -----------------------------------------------------------------


def start_atoms(apartment: Apartment) -> set[Atom]:
    """The atoms that hold when an env resets into `apartment` (`HouseholdEnv.predicates()` then)."""
    atoms: set[Atom] = set()
    for obj, spec, surface in zip(
        apartment.objects, apartment.scene.objects, apartment.object_surfaces, strict=True
    ):
        atoms.add(("on", obj.name, surface.split("/")[0]))
        container = _start_container(apartment, np.asarray(spec.pos))
        if container is not None:
            atoms.add(("in", obj.name, container))
        room = apartment.room_of(spec.pos[:2])
        if room is not None:
            atoms.add(("in_room", obj.name, room))
    for info in apartment.fixtures:
        atoms.add(("in_room", info.name, info.room))
        atoms |= {("closed", f"{info.name}/{part.link}") for part in info.furniture.openables}
    x, y, yaw = _robot_start(apartment)
    for info in apartment.fixtures:  # the env's test of `at`, on the start pose
        px, py, pyaw = info.place
        if np.hypot(x - px, y - py) < AT_DISTANCE and abs(wrap_angle(yaw - pyaw)) < AT_YAW:
            atoms.add(("at", ROBOT, info.name))
            break
    room = apartment.room_of((x, y))
    if room is not None:
        atoms.add(("in_room", ROBOT, room))
    return atoms


def _start_container(apartment: Apartment, pos: np.ndarray) -> str | None:
    """The first drawer (`fixture/link`) whose tray holds the world point `pos` (m) with every drawer
    shut, by the env's test (`SymbolicState.container_of`): a thin object on a chest's top lies within the
    top drawer's headroom, so it counts as in it, too."""
    for info in apartment.fixtures:
        links = {link.name: link for link in info.furniture.spec.root.children}
        rotation = np.array([[np.cos(info.yaw), -np.sin(info.yaw)], [np.sin(info.yaw), np.cos(info.yaw)]])
        for box in info.furniture.containers:
            origin = info.to_world(np.add(info.furniture.spec.root.pos, links[box.link].pos))
            local = np.append(rotation.T @ (pos[:2] - origin[:2]), pos[2] - origin[2]) - np.asarray(
                box.centre
            )
            half = np.asarray(box.half)
            if np.all(np.abs(local[:2]) <= half[:2]) and -half[2] - 0.01 <= local[2] <= half[2] + IN_HEADROOM:
                return f"{info.name}/{box.link}"
    return None


def _robot_start(apartment: Apartment) -> tuple[float, float, float]:
    """World (x, y, yaw) of the robot base after a reset (m, rad), as `HouseholdEnv` computes it."""
    mount = apartment.scene.robot
    return mount.pos[0], mount.pos[1], 2.0 * np.arctan2(mount.quat[3], mount.quat[0])


def start_scene_graph(apartment: Apartment, atoms: set[Atom] | None = None) -> dict:
    """`HouseholdEnv.scene_graph()` right after a reset into `apartment`, without the robot's `tcp` and
    `gripper_width` (see the module docstring)."""
    atoms = start_atoms(apartment) if atoms is None else atoms
    parts = {f"{f.name}/{p.link}": "closed" for f in apartment.fixtures for p in f.furniture.openables}
    positions = [np.asarray(spec.pos) for spec in apartment.scene.objects]
    lift = apartment.scene.robot.mobile_base.home_lift
    return scene_graph_of(
        apartment, atoms, parts, positions, _robot_start(apartment), {"lift": round(lift, 4)}
    )


# ---- words ------------------------------------------------------------------------------------------

OBJECT_WORDS: dict[str, tuple[str, ...]] = {
    "mug": ("mug", "coffee mug"),
    "cup": ("cup", "teacup"),
    "bowl": ("bowl",),
    "glass": ("glass", "tumbler"),
    "jar": ("jar",),
    "bottle": ("bottle",),
    "can": ("can", "tin"),
    "salt_shaker": ("salt shaker", "salt cellar"),
    "apple": ("apple",),
    "orange": ("orange",),
    "lemon": ("lemon",),
    "pear": ("pear",),
    "banana": ("banana",),
    "candle": ("candle",),
    "book": ("book",),
    "toy_block": ("toy block", "block"),
    "tennis_ball": ("tennis ball", "ball"),
    "remote": ("remote", "remote control"),
    "phone": ("phone", "mobile phone"),
    "sponge": ("sponge",),
    "soap": ("soap", "bar of soap"),
    "tea_box": ("tea box", "box of tea"),
    "towel": ("towel", "hand towel"),
}
"""each category's name phrase (first) and synonyms"""
USE_CLASSES: dict[tuple[str, ...], tuple[str, ...]] = {
    ("thing to drink from", "drinking vessel"): ("mug", "cup", "glass"),
    ("piece of fruit", "fruit"): ("apple", "orange", "lemon", "pear", "banana"),
    ("piece of tableware", "dish"): ("mug", "cup", "bowl", "glass"),
    ("drink", "beverage"): ("bottle", "can"),
    ("toy", "plaything"): ("toy_block", "tennis_ball"),
    ("gadget", "electronic device"): ("remote", "phone"),
    ("thing to wash with", "toiletry"): ("soap", "sponge", "towel"),
    ("thing to read", "piece of reading"): ("book",),
    ("seasoning",): ("salt_shaker",),
    ("thing that gives light",): ("candle",),
}
"""categories of use: the words for them and the categories they cover"""
GENERIC_NOUNS = ("object", "thing", "item")
FIXTURE_WORDS: dict[str, tuple[str, ...]] = {
    "counter": ("counter", "worktop"),
    "table": ("table",),
    "shelf": ("shelf", "bookcase"),
    "cabinet": ("cabinet", "cupboard"),
    "chest_of_drawers": ("chest of drawers", "dresser"),
    "fridge": ("fridge", "refrigerator"),
    "microwave": ("microwave",),
}
ABSENT_FURNITURE = ("sofa", "bed", "desk", "armchair", "bathtub", "wardrobe")
"""furniture no apartment has (references to it pick out nothing)"""
OBJECT_RELATION_WORDS = ("plain", "that is", "from")
"""how an object's place is said: "the mug on the shelf", "the mug that is on the shelf", "the mug from the
shelf" (a goal's object is never said the plain way: "put the mug on the shelf on the table" reads two ways)"""
COLOUR_OF_WORDS = ("that has the colour of", "of the same colour as")
DOOR_WORDS = {1: "next to", 2: "two doors from", 3: "three doors from"}
"""how a room `k` doors from another is said ("the room next to the kitchen")"""

NOUN_CATEGORIES: dict[str, frozenset[str]] = {}
for _category, _words in OBJECT_WORDS.items():
    for _word in _words:
        NOUN_CATEGORIES[_word] = NOUN_CATEGORIES.get(_word, frozenset()) | {_category}
for _words, _categories in USE_CLASSES.items():
    for _word in _words:
        NOUN_CATEGORIES[_word] = NOUN_CATEGORIES.get(_word, frozenset()) | set(_categories)
for _word in GENERIC_NOUNS:
    NOUN_CATEGORIES[_word] = frozenset(c.name for c in CATEGORIES)
FIXTURE_CATEGORIES: dict[str, str] = {w: c for c, words in FIXTURE_WORDS.items() for w in words}

PLACE_TEMPLATES = (
    "put {obj} on {place}",
    "place {obj} on {place}",
    "move {obj} to {place}",
    "bring {obj} to {place}",
    "take {obj} to {place}",
    "set {obj} down on {place}",
    "please put {obj} onto {place}",
    "could you move {obj} over to {place}",
)
STOW_TEMPLATES = (
    "put {obj} in {part} and close it",
    "place {obj} inside {part}, then shut it",
    "stow {obj} in {part} and close it",
    "store {obj} in {part} and shut it again",
    "put away {obj} in {part} and close the drawer",
    "take {obj} to {part}, put it inside and close it",
)
UNREACHABLE_TEMPLATES = ("put {obj} on {place}", "put {obj} inside {place}")
"""for `unreachable goal`: on a fixture without a top, into a fixture without a drawer"""
TIDY_OPENINGS = (
    "tidy up: put {items}",
    "clean up: put {items}",
    "please put {items}",
    "tidy up by putting {items}",
)
TIDY_CLOSINGS = (
    ", then close the drawer",
    " and close the drawer afterwards",
    ", and shut the drawer when done",
)


# ---- reference expressions --------------------------------------------------------------------------


class Scene:
    """A scene graph with the look-ups references resolve through."""

    def __init__(self, graph: dict):
        self.graph = graph
        self.objects = {o["name"]: o for o in graph["objects"]}
        self.fixtures = {f["name"]: f for f in graph["fixtures"]}
        self.room_order = [r["name"] for r in graph["rooms"]]
        self.places = object_places(graph)
        self.sizes = {o["name"]: size_word(o["half_extents"]) for o in graph["objects"]}
        self.parts = {p["name"]: f["name"] for f in graph["fixtures"] for p in f["parts"]}

    def fixture_of(self, obj: str) -> str | None:
        relation, where = self.places.get(obj, ("", ""))
        return where if relation == "on" else self.parts.get(where) if relation == "in" else None


def render(expr: dict) -> str:
    """The reference in English, with its definite article ("the small blue glass on the shelf")."""
    if "room" in expr:
        return f"the {expr['room'].replace('_', ' ')}"
    if "doors" in expr:
        return f"the room {DOOR_WORDS[expr['doors']]} {render(expr['from'])}"
    if "part" in expr:
        return f"the {expr['part']} of {render(expr['of'])}"
    if "fixture" in expr:
        return f"the {expr['fixture']}" + (f" in {render(expr['in'])}" if "in" in expr else "")
    words = " ".join(w for w in (expr.get("size"), expr.get("colour"), expr["object"]) if w)
    for relation in ("on", "in"):
        if relation in expr:
            via = {"from": "from", "that is": f"that is {relation}"}.get(expr.get("via"), relation)
            return f"the {words} {via} {render(expr[relation])}"
    if "colour_of" in expr:
        return f"the {words} {expr.get('via', COLOUR_OF_WORDS[0])} {render(expr['colour_of'])}"
    return f"the {words}"


def resolve(expr: dict, scene: Scene | dict) -> tuple[frozenset[str], int]:
    """The entities `expr` picks out in the scene (objects, fixtures, parts or rooms by name) and its hop
    count (see the module docstring). A nested reference that does not pick out exactly one entity makes
    the whole pick out nothing."""
    scene = scene if isinstance(scene, Scene) else Scene(scene)
    found, hops = _resolve(expr, scene)
    return frozenset(found), hops


def _the(expr: dict, scene: Scene) -> tuple[str | None, int]:
    found, hops = _resolve(expr, scene)
    return (next(iter(found)) if len(found) == 1 else None), hops


def _resolve(expr: dict, scene: Scene) -> tuple[set[str], int]:
    if "room" in expr:
        return ({expr["room"]} & set(scene.room_order)), 0
    if "doors" in expr:
        anchor, hops = _the(expr["from"], scene)
        if anchor is None:
            return set(), hops + expr["doors"]
        i = scene.room_order.index(anchor)
        return {r for j, r in enumerate(scene.room_order) if abs(j - i) == expr["doors"]}, hops + expr[
            "doors"
        ]
    if "part" in expr:
        fixture, hops = _the(expr["of"], scene)
        link = expr["part"].replace(" ", "_")
        return ({f"{fixture}/{link}"} & set(scene.parts) if fixture else set()), hops + 1
    if "fixture" in expr:
        word = expr["fixture"]
        named = {n for n, f in scene.fixtures.items() if f["phrase"] == word}
        found = named or {
            n for n, f in scene.fixtures.items() if f["category"] == FIXTURE_CATEGORIES.get(word)
        }
        if "in" not in expr:
            return found, 0
        room, hops = _the(expr["in"], scene)
        return {n for n in found if scene.fixtures[n]["room"] == room}, hops + 1
    categories = NOUN_CATEGORIES.get(expr["object"], frozenset())
    found = {
        n
        for n, o in scene.objects.items()
        if o["category"] in categories
        and expr.get("colour") in (None, o["colour"])
        and expr.get("size") in (None, scene.sizes[n])
    }
    if "on" in expr:
        fixture, hops = _the(expr["on"], scene)
        return {n for n in found if scene.places.get(n) == ("on", fixture)}, hops + 1
    if "in" in expr:
        room, hops = _the(expr["in"], scene)
        return {n for n in found if scene.objects[n]["room"] == room}, hops + 1
    if "colour_of" in expr:
        other, hops = _the(expr["colour_of"], scene)
        colour = scene.objects[other]["colour"] if other else None
        return {n for n in found if n != other and scene.objects[n]["colour"] == colour}, hops + 1
    return found, 0


# ---- generating references ----------------------------------------------------------------------------

ATTEMPTS = 40
"""random reference constructions tried per entity and hop count before giving up"""


def _choice(rng: np.random.Generator, items):
    items = list(items)
    return items[int(rng.integers(len(items)))]


def _object_nouns(category: str) -> list[str]:
    return [w for w, cats in NOUN_CATEGORIES.items() if category in cats]


def _room_expr(
    room: str, hops: int, scene: Scene, rng: np.random.Generator, avoid: frozenset[str] = frozenset()
) -> dict | None:
    """`room` by name (0 hops) or as the room some doors from another (never one already on the way: "the
    room next to the room next to the bathroom" is not the bathroom)."""
    if hops == 0:
        return {"room": room}
    i = scene.room_order.index(room)
    anchors = [
        (abs(j - i), r)
        for j, r in enumerate(scene.room_order)
        if 1 <= abs(j - i) <= min(hops, max(DOOR_WORDS)) and r not in avoid
    ]
    if not anchors:
        return None
    doors, anchor = _choice(rng, anchors)
    inner = _room_expr(anchor, hops - doors, scene, rng, avoid | {room})
    return None if inner is None else {"doors": doors, "from": inner}


def _fixture_expr(fixture: str, hops: int, scene: Scene, rng: np.random.Generator) -> dict | None:
    info = scene.fixtures[fixture]
    word = _choice(rng, FIXTURE_WORDS[info["category"]])
    if hops == 0:
        named = not re.search(r"\d", info["phrase"]) and rng.uniform() < 0.5
        return {"fixture": info["phrase"] if named else word}
    room = _room_expr(info["room"], hops - 1, scene, rng)
    return None if room is None else {"fixture": word, "in": room}


def _object_expr(
    obj: str, hops: int, scene: Scene, rng: np.random.Generator, generic: float, top: bool = False
) -> dict | None:
    info = scene.objects[obj]
    nouns = _object_nouns(info["category"])
    if rng.uniform() < generic:
        noun = _choice(rng, GENERIC_NOUNS)
    else:
        noun = _choice(rng, [n for n in nouns if n not in GENERIC_NOUNS])
    expr: dict = {"object": noun}
    if rng.uniform() < (0.7 if hops == 0 else 0.3):
        expr["colour"] = info["colour"]
    if rng.uniform() < (0.35 if hops == 0 else 0.1):
        expr["size"] = scene.sizes[obj]
    if hops == 0:
        return expr
    relations = ["in"]
    if scene.fixture_of(obj) and scene.places[obj][0] == "on":
        relations += ["on", "on"]
    same_colour = [n for n, o in scene.objects.items() if n != obj and o["colour"] == info["colour"]]
    if same_colour:
        relations.append("colour_of")
    relation = _choice(rng, relations)
    if relation == "on":
        inner = _fixture_expr(scene.places[obj][1], hops - 1, scene, rng)
    elif relation == "in":
        inner = _room_expr(info["room"], hops - 1, scene, rng) if info["room"] else None
    else:
        expr.pop("colour", None)
        inner = _object_expr(_choice(rng, same_colour), hops - 1, scene, rng, generic=0.3)
    if inner is None:
        return None
    expr[relation] = inner
    if relation == "colour_of":
        expr["via"] = _choice(rng, COLOUR_OF_WORDS)
    else:
        expr["via"] = _choice(rng, OBJECT_RELATION_WORDS[1:] if top else OBJECT_RELATION_WORDS[:2])
    return expr


def refer(
    entity: str, hops: int, scene: Scene, rng: np.random.Generator, generic: float = 0.2, top: bool = False
) -> dict | None:
    """A reference of exactly `hops` hops that picks out exactly `entity` (an object, a fixture or a
    drawer `fixture/link`) in `scene`, or None when `ATTEMPTS` random constructions find none. `generic` is
    the chance an object is called "object" / "thing" / "item" rather than by a category word; `top`: the
    reference is the object of a goal (its place is said unambiguously, `OBJECT_RELATION_WORDS`)."""
    for _ in range(ATTEMPTS):
        if entity in scene.objects:
            expr = _object_expr(entity, hops, scene, rng, generic, top)
        elif entity in scene.fixtures:
            expr = _fixture_expr(entity, hops, scene, rng)
        else:
            fixture, link = entity.split("/")
            inner = _fixture_expr(fixture, hops - 1, scene, rng) if hops >= 1 else None
            expr = None if inner is None else {"part": link.replace("_", " "), "of": inner}
        if expr is not None and resolve(expr, scene) == (frozenset({entity}), hops):
            return expr
    return None


def _missing_object(expr: dict, scene: Scene, rng: np.random.Generator) -> dict | None:
    """`expr` with its noun, or its noun and colour, changed so that it picks out nothing (`no such
    object`): "the purple mug" where no mug is purple. Its structure (and hop count) stays."""
    for _ in range(ATTEMPTS):
        changed = dict(expr)
        if "colour_of" in expr or rng.uniform() < 0.5:
            changed["object"] = _choice(rng, [w for words in OBJECT_WORDS.values() for w in words])
        else:
            category = CATEGORY_BY_NAME[_choice(rng, sorted(NOUN_CATEGORIES[expr["object"]]))]
            changed["object"] = OBJECT_WORDS[category.name][0]
            changed["colour"] = _choice(rng, category.colours)
        if not resolve(changed, scene)[0]:
            return changed
    return None


def _missing_place(expr: dict, scene: Scene, rng: np.random.Generator) -> dict | None:
    """A furniture reference like `expr` (same hops) that picks out nothing (`no such place`); for a drawer,
    the drawer of such a piece of furniture."""
    if "part" in expr:
        inner = _missing_place(expr["of"], scene, rng)
        return None if inner is None else {"part": expr["part"], "of": inner}
    for _ in range(ATTEMPTS):
        changed = dict(expr)
        changed["fixture"] = (
            _choice(rng, ABSENT_FURNITURE)
            if "in" not in expr
            else _choice(rng, [w for w in FIXTURE_CATEGORIES])
        )
        if not resolve(changed, scene)[0]:
            return changed
    return None


# ---- goals and plans ------------------------------------------------------------------------------------


def simulate(plan: Plan, atoms: set[Atom], graph: dict) -> frozenset[Atom]:
    """The fluent state (with the derived atoms, `oracle.derive`) after running `plan` from `atoms`, by the
    operators' preconditions and effects (`verifier.verify`). Raises `ValueError` with the verifier's
    message naming the first call whose ids are not of its parameters' types or whose preconditions do not
    hold."""
    verdict = verify(plan, atoms, graph)
    if not verdict.ok:
        raise ValueError(verdict.message)
    return verdict.final_state


def unreachable(goal: list[Atom], atoms: set[Atom], graph: dict) -> bool:
    """Whether no plan reaches `goal`: an `in` atom whose target is no drawer or an `on` atom whose target
    has no top cannot be made true by any operator (only `place_in` / `place_on` add them, and their
    parameters are typed); otherwise, whether the oracle finds no plan."""
    typed = entities(graph)
    if any(
        (a[0] == "in" and a[2] not in typed["container"]) or (a[0] == "on" and a[2] not in typed["surface"])
        for a in goal
    ):
        return True
    return oracle.plan(atoms, set(goal), graph) is None


def chain_plan(atoms: set[Atom], subgoals: list[set[Atom]], graph: dict) -> Plan | None:
    """One shortest oracle plan per sub-goal, each from the state the previous leaves, concatenated; None
    when a sub-goal has no plan or the concatenation does not reach every sub-goal."""
    calls: list[PlanCall] = []
    state = frozenset(atoms)
    for goal in subgoals:
        steps = oracle.plan(set(state), goal, graph)
        if steps is None:
            return None
        part = from_oracle(steps)
        state = simulate(part, set(state), graph)
        calls.extend(part.calls)
    plan = Plan(tuple(calls))
    reached = simulate(plan, atoms, graph)
    return plan if all(goal <= reached for goal in subgoals) else None


# ---- examples -------------------------------------------------------------------------------------------


@dataclass
class PlannerExample:
    """One (scene, instruction, plan) example. `facts`: `scene_facts` of the start scene graph; `plan`: the
    plan language (`cannot: <reason>` when infeasible); `hops`: the largest hop count of its references;
    `skills`: the number of operator calls (0 when infeasible); `goal` / `initial`: the goal atoms (empty when
    a reference picks out nothing) and the start atoms, as lists; `references`: each reference as
    {"phrase", "expr", "entity" (None when it picks out nothing), "hops"}."""

    apartment_seed: int
    task: str
    instruction: str
    facts: list[str]
    plan: str
    hops: int
    skills: int
    feasible: bool
    goal: list[list[str]]
    initial: list[list[str]]
    split: str
    references: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class SplitSpec:
    """How one split draws its examples: tasks (name, weight), hop range of the main reference and of the
    others, tidy sizes, and the skill bounds a feasible plan must keep."""

    tasks: tuple[tuple[str, float], ...]
    main_hops: tuple[int, int]
    other_hops: tuple[int, int]
    tidy_sizes: tuple[int, int]
    min_skills: int
    max_skills: int


TRAIN_MAX_HOPS = 2
TRAIN_MAX_SKILLS = 11
MAX_HOPS = 5
INFEASIBLE_FRACTION = 0.1
_STANDARD = (("pick_place", 0.4), ("stow", 0.25), ("tidy", 0.35))
SPLITS: dict[str, SplitSpec] = {
    "train": SplitSpec(_STANDARD, (0, TRAIN_MAX_HOPS), (0, TRAIN_MAX_HOPS), (1, 2), 1, TRAIN_MAX_SKILLS),
    "heldout_apartments": SplitSpec(
        _STANDARD, (0, TRAIN_MAX_HOPS), (0, TRAIN_MAX_HOPS), (1, 2), 1, TRAIN_MAX_SKILLS
    ),
    "deeper": SplitSpec(
        _STANDARD, (TRAIN_MAX_HOPS + 1, MAX_HOPS), (0, TRAIN_MAX_HOPS), (1, 2), 1, TRAIN_MAX_SKILLS
    ),
    "longer": SplitSpec(
        (("tidy", 1.0),), (0, TRAIN_MAX_HOPS), (0, TRAIN_MAX_HOPS), (3, 5), TRAIN_MAX_SKILLS + 1, 64
    ),
}


class StartStates:
    """Start states by apartment seed, each computed once: (apartment, atoms, scene graph, `Scene`,
    facts)."""

    def __init__(self):
        self._cache: dict[int, tuple[Apartment, set[Atom], dict, Scene, list[str]]] = {}

    def __call__(self, seed: int):
        if seed not in self._cache:
            apartment = generate_apartment(seed)
            atoms = start_atoms(apartment)
            graph = start_scene_graph(apartment, atoms)
            self._cache[seed] = (apartment, atoms, graph, Scene(graph), scene_facts(graph))
        return self._cache[seed]


def _drawer(apartment: Apartment) -> str:
    """The drawer tasks load (`Container.loadable`)."""
    return next(
        f"{f.name}/{c.link}" for f in apartment.fixtures for c in f.furniture.containers if c.loadable
    )


def _goal_targets(task: str, apartment: Apartment, scene: Scene, rng: np.random.Generator, spec: SplitSpec):
    """[(object, relation, target)] the task asks for, or None when the apartment has no such task."""
    names = [o.name for o in apartment.objects]
    if task == "pick_place":
        obj = _choice(rng, names)
        tops = [f for f, info in scene.fixtures.items() if info["has_top"] and f != scene.fixture_of(obj)]
        return [(obj, "on", _choice(rng, tops))]
    if task == "stow":
        return [(_choice(rng, names), "in", _drawer(apartment))]
    drawer = _drawer(apartment)
    misplaced = [  # (a thin towel on the chest already counts as in its top drawer: not misplaced)
        o
        for o in apartment.objects
        if scene.fixtures[scene.fixture_of(o.name)]["category"] != CATEGORY_BY_NAME[o.category].belongs_on
        and ["in", o.name, drawer] not in scene.graph["relations"]
    ]
    low, high = spec.tidy_sizes
    if len(misplaced) < low:
        return None
    count = int(rng.integers(low, min(high, len(misplaced)) + 1))
    picks = [misplaced[i] for i in sorted(rng.permutation(len(misplaced))[:count])]
    targets = []
    for obj in picks:
        belongs = CATEGORY_BY_NAME[obj.category].belongs_on
        if belongs == "drawer":
            targets.append((obj.name, "in", drawer))
            continue
        homes = [f for f, info in scene.fixtures.items() if info["category"] == belongs]
        same_room = [f for f in homes if scene.fixtures[f]["room"] == scene.objects[obj.name]["room"]]
        targets.append((obj.name, "on", _choice(rng, same_room or homes)))
    return sorted(targets, key=lambda t: t[1] == "in")  # onto tops first, then the drawer


def _hop_targets(n: int, spec: SplitSpec, rng: np.random.Generator) -> list[int]:
    """Hop counts for `n` references: one (at a random position) from the main range, the rest from the
    others'."""
    hops = [int(rng.integers(spec.other_hops[0], spec.other_hops[1] + 1)) for _ in range(n)]
    hops[int(rng.integers(n))] = int(rng.integers(spec.main_hops[0], spec.main_hops[1] + 1))
    return hops


def _reference(
    entity: str, hops: int, scene: Scene, rng: np.random.Generator, spec: SplitSpec, top: bool = False
) -> dict | None:
    """A reference to `entity` of `hops` hops, else of another hop count of the same range (nearest first)."""
    low, high = spec.main_hops if hops > spec.other_hops[1] else spec.other_hops
    generic = 0.5 if hops >= 2 else 0.15
    for h in sorted(range(low, high + 1), key=lambda h: (abs(h - hops), h)):
        expr = refer(entity, h, scene, rng, generic, top)
        if expr is not None:
            return expr
    return None


def make_example(
    apartment_seed: int,
    task: str,
    split: str,
    rng: np.random.Generator,
    infeasible: str | None = None,
    apartments: StartStates | None = None,
) -> PlannerExample | None:
    """One example of `task` in the apartment of `apartment_seed`, drawn from `rng` as `SPLITS[split]`
    says; `infeasible` (a `language.CANNOT_REASONS` reason) makes it one that must be refused. None when
    this draw yields no valid example (no reference found, a plan outside the split's skill bounds)."""
    spec = SPLITS[split]
    apartment, atoms, graph, scene, facts = (apartments or StartStates())(apartment_seed)
    targets = _goal_targets(task, apartment, scene, rng, spec)
    if not targets:
        return None
    hop_plan = _hop_targets(2 * len(targets), spec, rng)
    references = []
    for i, (obj, _, target) in enumerate(targets):
        for entity, hops in ((obj, hop_plan[2 * i]), (target, hop_plan[2 * i + 1])):
            expr = _reference(entity, hops, scene, rng, spec, top=entity == obj)
            if expr is None:
                return None
            references.append({"expr": expr, "entity": entity})
    goal: list[Atom] = [(relation, obj, target) for obj, relation, target in targets]
    if any(relation == "in" for _, relation, _ in targets):
        goal.append(("closed", _drawer(apartment)))
    template_words = None
    if infeasible == "unreachable goal":
        if task != "pick_place":
            return None
        impossible = [(f, "on") for f, info in scene.fixtures.items() if not info["has_top"]] + [
            (f, "in")
            for f, info in scene.fixtures.items()
            if info["parts"] and not any(p["is_container"] for p in info["parts"])
        ]
        fixture, relation = _choice(rng, impossible)
        expr = _reference(fixture, hop_plan[1], scene, rng, spec)
        if expr is None:
            return None
        references[1] = {"expr": expr, "entity": fixture}
        goal = [(relation, targets[0][0], fixture)]
        template_words = UNREACHABLE_TEMPLATES[relation == "in"]
        if not unreachable(goal, atoms, graph):
            return None
    elif infeasible is not None:
        index = _choice(rng, range(0, len(references), 2)) + (infeasible == "no such place")
        changed = (_missing_place if infeasible == "no such place" else _missing_object)(
            references[index]["expr"], scene, rng
        )
        if changed is None:
            return None
        references[index] = {"expr": changed, "entity": None}
        goal = []
    for ref in references:
        ref["phrase"] = render(ref["expr"])
        ref["hops"] = resolve(ref["expr"], scene)[1]
    instruction = _instruction(task, targets, references, rng, template_words)
    if infeasible is not None:
        plan, skills = Plan(cannot=infeasible), 0
    else:
        subgoals = [{("on", o, t)} for o, r, t in targets if r == "on"]
        drawer_goal = {g for g in goal if g[0] in ("in", "closed")}
        plan = chain_plan(atoms, subgoals + ([drawer_goal] if drawer_goal else []), graph)
        if plan is None:
            return None
        skills = len(plan.calls)
        if not spec.min_skills <= skills <= spec.max_skills:
            return None
    return PlannerExample(
        apartment_seed=int(apartment_seed),
        task=task,
        instruction=instruction,
        facts=facts,
        plan=format_plan(plan),
        hops=max(r["hops"] for r in references),
        skills=skills,
        feasible=infeasible is None,
        goal=[list(a) for a in sorted(goal)],
        initial=[list(a) for a in sorted(atoms)],
        split=split,
        references=[{k: r[k] for k in ("phrase", "expr", "entity", "hops")} for r in references],
    )


def _instruction(
    task: str, targets, references: list[dict], rng: np.random.Generator, template: str | None
) -> str:
    phrases = [r["phrase"] for r in references]
    if task == "pick_place":
        return (template or _choice(rng, PLACE_TEMPLATES)).format(obj=phrases[0], place=phrases[1])
    if task == "stow":
        return _choice(rng, STOW_TEMPLATES).format(obj=phrases[0], part=phrases[1])
    items = [
        f"{phrases[2 * i]} {relation} {phrases[2 * i + 1]}" for i, (_, relation, _) in enumerate(targets)
    ]
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    text = _choice(rng, TIDY_OPENINGS).format(items=listed)
    if any(relation == "in" for _, relation, _ in targets):
        text += _choice(rng, TIDY_CLOSINGS)
    return text


# ---- splits and files ------------------------------------------------------------------------------------


def apartment_pools(seed: int, n_train: int, n_heldout: int) -> tuple[list[int], list[int]]:
    """Disjoint apartment seeds for training (also used by `deeper` and `longer`) and for
    `heldout_apartments`."""
    seeds = np.random.default_rng([seed, 7]).choice(10**7, size=n_train + n_heldout, replace=False)
    return [int(s) for s in seeds[:n_train]], [int(s) for s in seeds[n_train:]]


def generate_split(
    split: str, n: int, apartment_seeds: list[int], seed: int = 0, progress: bool = True, apartments=None
) -> list[PlannerExample]:
    """`n` examples of `split` in the apartments of `apartment_seeds`; example i from its own generator
    seeded by (seed, split, i)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; splits: {', '.join(SPLITS)}")
    spec = SPLITS[split]
    apartments = apartments or StartStates()
    tasks, weights = zip(*spec.tasks, strict=True)
    examples = []
    for i in tqdm(range(n), desc=split, disable=not progress):
        rng = np.random.default_rng([seed, list(SPLITS).index(split), i])
        for _ in range(100):
            infeasible = None
            if rng.uniform() < INFEASIBLE_FRACTION:  # `unreachable goal` is a pick-and-place task
                infeasible = _choice(rng, CANNOT_REASONS if "pick_place" in tasks else CANNOT_REASONS[:2])
            task = tasks[int(rng.choice(len(tasks), p=np.asarray(weights) / sum(weights)))]
            if infeasible == "unreachable goal":
                task = "pick_place"
            example = make_example(_choice(rng, apartment_seeds), task, split, rng, infeasible, apartments)
            if example is not None:
                examples.append(example)
                break
        else:
            raise RuntimeError(f"no valid {split} example in 100 draws (index {i})")
    return examples


def generate_dataset(
    out_dir: str | Path,
    n_train: int = 2000,
    n_heldout: int = 300,
    n_deeper: int = 300,
    n_longer: int = 300,
    n_train_apartments: int = 200,
    n_heldout_apartments: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Path]:
    """Write every split to `out_dir/<split>.jsonl` (`PlannerExample`s) and `out_dir/<split>.pairs.jsonl`
    (`as_pairs`) and return the examples' paths by split; the generation speed goes to `out_dir/stats.json`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    train_seeds, heldout_seeds = apartment_pools(seed, n_train_apartments, n_heldout_apartments)
    sizes = {"train": n_train, "heldout_apartments": n_heldout, "deeper": n_deeper, "longer": n_longer}
    apartments = StartStates()
    paths, stats = {}, {}
    for split, n in sizes.items():
        start = time.perf_counter()
        pool = heldout_seeds if split == "heldout_apartments" else train_seeds
        examples = generate_split(split, n, pool, seed, progress, apartments)
        seconds = time.perf_counter() - start
        paths[split] = write_examples(out / f"{split}.jsonl", examples)
        write_pairs(out / f"{split}.pairs.jsonl", examples)
        stats[split] = {
            "examples": n,
            "seconds": round(seconds, 3),
            "examples_per_s": round(n / max(seconds, 1e-9), 1),
        }
    (out / "stats.json").write_text(json.dumps(stats, indent=2))
    return paths


def planner_context(facts: Sequence[str], instruction: str) -> str:
    """What the looped planner reads: the facts, one a line, then the line `instruction: ...`. The
    trainer's pairs (`as_pairs`) and the planner at run time (`planners.LoopedPlanner`) both build it here."""
    return "\n".join(facts) + "\ninstruction: " + instruction


def as_pairs(examples: list[PlannerExample]) -> list[dict[str, str]]:
    """{"context": `planner_context` of the facts and the instruction, "plan": the plan text} per example."""
    return [{"context": planner_context(e.facts, e.instruction), "plan": e.plan} for e in examples]


def write_examples(path: str | Path, examples: list[PlannerExample]) -> Path:
    """One JSON object per line."""
    path = Path(path)
    path.write_text("".join(json.dumps(asdict(e)) + "\n" for e in examples))
    return path


def write_pairs(path: str | Path, examples: list[PlannerExample]) -> Path:
    path = Path(path)
    path.write_text("".join(json.dumps(p) + "\n" for p in as_pairs(examples)))
    return path


_REQUIRED = {f.name for f in fields(PlannerExample) if f.name != "references"}
_KNOWN = {f.name for f in fields(PlannerExample)}


def read_examples(path: str | Path) -> list[PlannerExample]:
    """The examples of a `write_examples` file. Raises `ValueError` naming the path (and the line) when the
    file is missing or a line is not an example."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file of planner examples")
    examples = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{path} line {number}: not JSON ({error.msg} at column {error.colno})"
            ) from None
        if not isinstance(record, dict):
            raise ValueError(
                f"{path} line {number}: a planner example is a JSON object; got {type(record).__name__}"
            )
        missing, unknown = _REQUIRED - record.keys(), record.keys() - _KNOWN
        if missing or unknown:
            raise ValueError(
                f"{path} line {number}: not a planner example (missing {sorted(missing)}, unknown {sorted(unknown)})"
            )
        examples.append(PlannerExample(**record))
    return examples
