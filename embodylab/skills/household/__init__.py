"""Skills of the household suite and the oracle that plans over them.

The skills are closed-loop controllers that act through `env.step` only: `navigate(env, place)`,
`pick(env, obj)`, `place(env, obj, target)`, `open_part(env, part)` and `close_part(env, part)` read the world
through the `HouseholdEnv` accessors every control step, command the base, lift, arm and gripper through the
action adapter (`Robot`, the env's `ee_delta_pos` action) and return a `SkillResult` (success, or why not, and
the steps taken). Nothing is teleported: objects, doors and the robot move only under the simulated forces.

- `adapter`: `Robot`, `SkillResult`, the skill registry (`SKILLS`, `@skill(name)`) and the shared arm motion;
- `navigate`, `grasp` (pick, place), `articulate` (open, close): the skills;
- `schema`: `Operator` and `OPERATORS`, the PDDL-like schema the planner searches; each operator names its
  skill and the variables passed to it;
- `oracle`: `plan` (breadth-first search over the grounded operators) and `run_oracle` (plan, execute each
  step's skill, re-plan on failure).

A new skill is one registered function plus one operator that names it:

    @skill("wipe")
    def wipe(env, surface: str, robot: Robot | None = None) -> SkillResult: ...

    WIPE = Operator("wipe", (("?s", "surface"),), (("at", ROBOT, "?s"),), (("clean", "?s"),), (), "wipe", ("?s",))
    run_oracle(env, operators=(*OPERATORS, WIPE))
"""

from __future__ import annotations

from embodylab.skills.household.adapter import SKILLS, EpisodeOver, Robot, SkillResult, skill
from embodylab.skills.household.articulate import close_part, open_part
from embodylab.skills.household.grasp import pick, place
from embodylab.skills.household.navigate import navigate
from embodylab.skills.household.oracle import RunReport, Step, derive, plan, run_oracle
from embodylab.skills.household.schema import OPERATORS, Operator

__all__ = [
    "OPERATORS",
    "SKILLS",
    "EpisodeOver",
    "Operator",
    "Robot",
    "RunReport",
    "SkillResult",
    "Step",
    "close_part",
    "derive",
    "navigate",
    "open_part",
    "pick",
    "place",
    "plan",
    "run_oracle",
    "skill",
]
