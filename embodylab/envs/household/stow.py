"""HouseholdStow: put an object into a closed drawer and close it again (open, place, close).

Goal: `{("in", obj, drawer), ("closed", drawer)}`; every drawer starts closed.
"""

from __future__ import annotations

from embodylab.envs.household.base import HouseholdEnv
from embodylab.envs.household.predicates import Atom


class HouseholdStowEnv(HouseholdEnv):
    def _sample_goal(self) -> tuple[list[Atom], str]:
        objects = [o.name for o in self.apartment.objects]
        obj = objects[self.np_random.integers(len(objects))]
        drawers = self._drawers()
        drawer = drawers[self.np_random.integers(len(drawers))]
        instruction = f"put the {self._object_phrase(obj)} in the {self._fixture_phrase(drawer)} and close it"
        return [("in", obj, drawer), ("closed", drawer)], instruction
