"""HouseholdTidy: put up to `N_TIDY` misplaced objects where their category belongs (4–12 skill steps).

Each object category names where it belongs (`Category.belongs_on`): dishes on a counter, fruit and remotes
on a table, books and toys on a shelf, soap, towels and tea in the chest's top drawer. An object is misplaced
when it stands elsewhere. Its goal is `("on", obj, fixture)` for a fixture of that category (one in the
object's own room when there is one) or `("in", obj, top drawer)`; with a drawer the goal also asks for the
drawer to end closed. In the rare apartment where every object is home already, one object is to be moved
to another top.
"""

from __future__ import annotations

from embodylab.envs.household.apartment import CATEGORY_BY_NAME
from embodylab.envs.household.base import HouseholdEnv
from embodylab.envs.household.predicates import Atom

N_TIDY = 2


class HouseholdTidyEnv(HouseholdEnv):
    def _sample_goal(self) -> tuple[list[Atom], str]:
        apt = self.apartment
        categories = {f.name: f.category for f in apt.fixtures}
        misplaced = [
            o
            for o in apt.objects
            if categories[self._start_fixture(o.name)] != CATEGORY_BY_NAME[o.category].belongs_on
        ]
        if not misplaced:  # rare: everything is home already; then one object goes to another top
            obj = apt.objects[self.np_random.integers(len(apt.objects))]
            source = self._start_fixture(obj.name)
            tops = [f.name for f in apt.fixtures if f.furniture.surfaces and f.name != source]
            target = tops[self.np_random.integers(len(tops))]
            return [
                ("on", obj.name, target)
            ], f"tidy up: put the {obj.phrase} on the {self._fixture_phrase(target)}"
        picks = self.np_random.permutation(len(misplaced))[:N_TIDY]
        atoms: list[Atom] = []
        phrases = []
        drawer = next(d for d in self._drawers() if d.endswith("top_drawer"))
        for index in sorted(picks):
            obj = misplaced[index]
            belongs = CATEGORY_BY_NAME[obj.category].belongs_on
            if belongs == "drawer":
                atoms.append(("in", obj.name, drawer))
                phrases.append(f"the {obj.phrase} in the {self._fixture_phrase(drawer)}")
                continue
            homes = [f for f in apt.fixtures if f.category == belongs]
            room = apt.room_of(self.data.xpos[self.model.body(obj.name).id][:2])
            same_room = [f for f in homes if f.room == room]
            choices = same_room or homes
            home = choices[self.np_random.integers(len(choices))].name
            atoms.append(("on", obj.name, home))
            phrases.append(f"the {obj.phrase} on the {self._fixture_phrase(home)}")
        if any(a[0] == "in" for a in atoms):
            atoms.append(("closed", drawer))
        instruction = "tidy up: put " + " and ".join(phrases)
        if ("closed", drawer) in atoms:
            instruction += ", then close the drawer"
        return atoms, instruction
