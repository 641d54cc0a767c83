"""The scene as a planner reads it: the household scene graph serialised *collapsed* (rooms, then each
room's furniture, then the objects on or in each piece), one fact per line, and the entity ids a plan may
name, by the operators' parameter types.

    room kitchen ; next to bathroom
    kitchen_counter in kitchen ; counter ; top
    microwave in kitchen ; microwave ; on kitchen_counter ; parts microwave/door (door, closed)
    blue_bottle on bedroom_shelf ; bottle ; blue ; medium
    robot in kitchen

The graph is `HouseholdEnv.scene_graph()` (JSON: rooms, fixtures, objects, robot, relations). Rooms stand
in a row, each joined by a doorway to the next (`Apartment.doors`), so a room's neighbours are the rooms
before and after it. Facts are the unit retrieval ranks and the context the planner reads.
"""

from __future__ import annotations

SIZE_WORDS = ((0.035, "small"), (0.06, "medium"), (float("inf"), "large"))
"""(upper bound of the largest half-extent in metres, word): how big an object is said to be"""
ENTITY_TYPES = ("object", "surface", "container", "part", "place")
"""the operators' parameter types (`embodylab.skills.household.schema.OPERATORS`)"""


def size_word(half_extents) -> str:
    """`small`, `medium` or `large` for an object of these half-extents (metres)."""
    largest = max(half_extents)
    return next(word for bound, word in SIZE_WORDS if largest < bound)


def room_neighbours(graph: dict) -> dict[str, list[str]]:
    """Each room's neighbours, joined to it by a doorway (the rooms stand in a row)."""
    names = [r["name"] for r in graph["rooms"]]
    return {name: names[max(0, i - 1) : i] + names[i + 1 : i + 2] for i, name in enumerate(names)}


def object_places(graph: dict) -> dict[str, tuple[str, str]]:
    """Each object's place from the relations: ("on", surface), ("in", container) or ("holding", "robot")."""
    places = {}
    for relation in graph["relations"]:
        if relation[0] in ("on", "in"):
            places[relation[1]] = (relation[0], relation[2])
        elif relation[0] == "holding":
            places[relation[1]] = ("holding", "robot")
    return places


def scene_facts(graph: dict) -> list[str]:
    """The collapsed serialisation of `graph`: per room its fact, its furniture's and their objects'."""
    neighbours = room_neighbours(graph)
    places = object_places(graph)
    states = {p["name"]: p["state"] for f in graph["fixtures"] for p in f["parts"]}
    part_of = {p["name"]: f["name"] for f in graph["fixtures"] for p in f["parts"]}
    by_fixture: dict[str, list[dict]] = {}
    loose = []
    for obj in graph["objects"]:
        relation, where = places.get(obj["name"], ("", ""))
        holder = part_of.get(where, where) if relation == "in" else where
        (by_fixture.setdefault(holder, []) if relation in ("on", "in") else loose).append(obj)

    def object_fact(obj: dict) -> str:
        relation, where = places.get(obj["name"], ("in", obj["room"] or "no room"))
        place = "held by the robot" if relation == "holding" else f"{relation} {where}"
        return (
            f"{obj['name']} {place} ; {obj['category']} ; {obj['colour']} ; {size_word(obj['half_extents'])}"
        )

    facts = []
    for room in graph["rooms"]:
        name = room["name"]
        facts.append(f"room {name} ; next to {', '.join(neighbours[name]) or 'no room'}")
        for fixture in (f for f in graph["fixtures"] if f["room"] == name):
            fact = f"{fixture['name']} in {name} ; {fixture['category']}"
            if fixture["has_top"]:
                fact += " ; top"
            if fixture.get("on_top_of"):
                fact += f" ; on {fixture['on_top_of']}"
            if fixture["parts"]:
                parts = ", ".join(
                    f"{p['name']} ({p['kind']}, {states[p['name']]}{', container' if p['is_container'] else ''})"
                    for p in fixture["parts"]
                )
                fact += f" ; parts {parts}"
            facts.append(fact)
            facts.extend(object_fact(obj) for obj in by_fixture.get(fixture["name"], []))
    facts.extend(object_fact(obj) for obj in loose)
    facts.append(f"robot in {graph['robot']['room'] or 'no room'}")
    return facts


def entities(graph: dict) -> dict[str, list[str]]:
    """The ids a plan may name, by parameter type: objects, surfaces (furniture with a top), containers
    (drawers), parts (doors and drawers, `fixture/link`) and places (every piece of furniture)."""
    parts = [p for f in graph["fixtures"] for p in f["parts"]]
    return {
        "object": sorted(o["name"] for o in graph["objects"]),
        "surface": sorted(f["name"] for f in graph["fixtures"] if f["has_top"]),
        "container": sorted(p["name"] for p in parts if p["is_container"]),
        "part": sorted(p["name"] for p in parts),
        "place": sorted(f["name"] for f in graph["fixtures"]),
    }
