"""HouseholdPickPlace: move one object from the top it stands on to the top of another piece of furniture.

This is the template household task: a task draws its goal atoms and instruction in `_sample_goal`.
Goal: `{("on", obj, target)}`; success when it holds (the object rests on the target's top, not held).
"""

from __future__ import annotations

from embodylab.envs.household.base import HouseholdEnv
from embodylab.envs.household.predicates import Atom


class HouseholdPickPlaceEnv(HouseholdEnv):
    def _sample_goal(self) -> tuple[list[Atom], str]:
        objects = [o.name for o in self.apartment.objects]
        obj = objects[self.np_random.integers(len(objects))]
        source = self._start_fixture(obj)
        targets = [f.name for f in self.apartment.fixtures if f.furniture.surfaces and f.name != source]
        target = targets[self.np_random.integers(len(targets))]
        instruction = f"put the {self._object_phrase(obj)} on the {self._fixture_phrase(target)}"
        return [("on", obj, target)], instruction
