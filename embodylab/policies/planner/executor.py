"""The executor: runs a verified plan through the household skills in physics, re-planning on failure.

Each call runs its operator's skill (`SKILLS[call.schema.skill](env, *skill_args(call), robot=robot)`); a
call has failed when its skill reports failure or, having reported success, leaves one of the operator's
add effects untrue in the observed atoms. The run stops at the first failed call. With a `replan`
function, the failure goes back to the planner as text, Inner Monologue style (Huang et al., CoRL 2022:
the scene's feedback in the planner's prompt):

    step 3 pick(blue_bottle, bedroom_shelf) failed: lost the grasp; now: robot at bedroom_shelf, hand empty, blue_bottle on bedroom_shelf

and the new plan is verified against the atoms observed now and run, at most `max_replans` times. No plan
runs unless it parses and verifies (`verifier.verify`): the first plan raises `PlanRejected` naming why; a
re-plan that does not is fed back in turn ("the new plan does not verify: step 2 ...; now: ...") and
counts as a re-plan.

`plan_and_execute` is the whole loop around one planner (what `embodylab plan` runs): the instruction's
facts retrieved (`retrieval.FactRetriever`), a plan asked for, verified, and executed with re-plans
asked of the same planner, the feedback appended to the instruction (`with_feedback`). `PlanningPolicy`
is that loop as a policy of `embodylab.rollout.play_episode`, so that the episode can be recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym

from embodylab.envs.household.predicates import ROBOT, Atom
from embodylab.policies.planner import retrieval
from embodylab.policies.planner.language import (
    Plan,
    PlanCall,
    PlanParseError,
    bindings_of,
    format_plan,
    parse_plan,
    skill_args,
)
from embodylab.policies.planner.planners import Planner, PlannerOutput, PlanOutputError
from embodylab.policies.planner.scene import entities, scene_facts
from embodylab.policies.planner.verifier import SymbolicWorld, Verdict, gcr, verify
from embodylab.rollout import DrivesEnv
from embodylab.skills.household.adapter import SKILLS, Robot
from embodylab.skills.household.oracle import _ground

EPISODE_ENDED = "the episode ended"
"""the reason a skill gives when the env terminated or truncated under it (`adapter.EpisodeOver`)"""


class PlanRejected(ValueError):
    """A plan that does not parse or does not verify from the current atoms: it is never run."""


@dataclass
class ExecutionReport:
    success: bool = False
    """every goal atom holds at the end"""
    gcr: float = 0.0
    """goal-conditions recall of the final atoms (`verifier.gcr`)"""
    steps_run: int = 0
    """skill calls run, failed ones included"""
    env_steps: int = 0
    replans: int = 0
    failures: list[str] = field(default_factory=list)
    """every failed call and rejected re-plan, in order"""
    executed: list[str] = field(default_factory=list)
    """the calls run, e.g. 'pick(red_mug, kitchen_counter)'"""
    outcomes: list[str] = field(default_factory=list)
    """why each call of `executed` failed, '' for one that succeeded"""
    plans: list[str] = field(default_factory=list)
    """the text of every plan that was run"""
    feedback: list[str] = field(default_factory=list)
    """the texts handed to `replan`"""
    final_atoms: frozenset[Atom] = field(default_factory=frozenset, repr=False)


def state_summary(state: frozenset[Atom], plan: Plan) -> str:
    """The atoms that bear on `plan`, in words: where the robot is, what it holds, where the objects the
    plan names are and whether the parts it names are open (`"robot at shelf, hand empty, red_mug on
    shelf, chest/top_drawer closed"`)."""
    at = sorted(a[2] for a in state if a[0] == "at" and a[1] == ROBOT)
    held = sorted(a[1] for a in state if a[0] == "holding")
    lines = [
        f"robot at {', '.join(at) or 'no place'}",
        f"holding {', '.join(held)}" if held else "hand empty",
    ]
    named = list(dict.fromkeys(arg for call in plan.calls for arg in call.args))
    for name in named:
        places = sorted(f"{name} {a[0]} {a[2]}" for a in state if a[0] in ("on", "in") and a[1] == name)
        lines.extend(places)
        if "/" in name:
            lines.append(
                f"{name} {next((a[0] for a in state if a[0] in ('open', 'closed') and a[1] == name), 'ajar')}"
            )
    return ", ".join(lines)


def _admit(plan: Plan | str, env: gym.Env) -> Plan:
    """`plan` (parsed when text) if it verifies from the env's atoms now; else `PlanRejected` naming why."""
    if isinstance(plan, str):
        try:
            plan = parse_plan(plan)
        except PlanParseError as error:
            raise PlanRejected(f"the plan does not parse: {error}") from None
    u = env.unwrapped
    verdict = verify(plan, u.predicates(), u.scene_graph())
    if not verdict.ok:
        raise PlanRejected(f"the plan does not verify: {verdict.message}")
    return plan


def _unmet_effect(world: SymbolicWorld, env: gym.Env, call: PlanCall) -> Atom | None:
    """The first add effect of `call` that does not hold in the env's atoms now (derived atoms included)."""
    state = world.state(env.unwrapped.predicates())
    binding = bindings_of(call)
    return next((a for a in (_ground(e, binding) for e in call.schema.add) if a not in state), None)


def _run(
    env: gym.Env, plan: Plan, robot: Robot, world: SymbolicWorld, report: ExecutionReport
) -> tuple[str, bool]:
    """Run `plan`'s calls until one fails: ('' or the failure, whether the episode ended)."""
    for index, call in enumerate(plan.calls):
        result = SKILLS[call.schema.skill](env, *skill_args(call), robot=robot)
        report.steps_run += 1
        report.executed.append(str(call))
        reason = result.reason if not result.success else ""
        if not reason:
            unmet = _unmet_effect(world, env, call)
            reason = f"the skill reported success but {unmet!r} does not hold" if unmet else ""
        report.outcomes.append(reason)
        if reason:
            return f"step {index + 1} {call} failed: {reason}", reason == EPISODE_ENDED
    return "", False


def execute(
    env: gym.Env,
    plan: Plan | str,
    max_replans: int = 2,
    replan: Callable[[str], Plan | str] | None = None,
) -> ExecutionReport:
    """Run `plan` in `env` (after `reset`) through the skills, re-planning with `replan(feedback)` after a
    failed call or a plan that ends short of the goal, at most `max_replans` times (module docstring).

    Raises:
        PlanRejected: `plan` does not parse or does not verify from the env's current atoms."""
    u = env.unwrapped
    current = _admit(plan, env)
    world = SymbolicWorld(u.scene_graph())
    robot = Robot(env)
    goal = frozenset(u.goal_atoms)
    initial = world.state(u.predicates())
    report = ExecutionReport()
    while True:
        report.plans.append(format_plan(current))
        failure, ended = _run(env, current, robot, world, report)
        state = world.state(u.predicates())
        if not failure and not goal <= state:
            missing = sorted(goal - state)
            failure = f"the plan ran to its end short of the goal: needs {missing[0]!r}"
        if failure:
            report.failures.append(failure)
        if not failure or ended or replan is None or not current.feasible:
            break
        ran, current = current, None
        while current is None and report.replans < max_replans:
            report.replans += 1
            feedback = f"{failure}; now: {state_summary(state, ran)}"
            report.feedback.append(feedback)
            try:
                current = _admit(replan(feedback), env)
            except PlanRejected as rejected:
                failure = str(rejected)
                report.failures.append(failure)
        if current is None:
            break
    final = world.state(u.predicates())
    report.env_steps = robot.steps
    report.final_atoms = final
    report.success = goal <= final
    report.gcr = gcr(final, initial, goal)
    return report


FEEDBACK = " ; feedback: "


def with_feedback(instruction: str, feedback: str) -> str:
    """The instruction of a re-plan: the original one, then the executor's feedback, on one line."""
    return instruction + FEEDBACK + feedback


@dataclass
class PlanningRun:
    """What `plan_and_execute` did: the facts it retrieved, the planner's first answer, its verdict and
    the execution (`None` when nothing ran: a refusal, or `error`)."""

    instruction: str
    retrieval: retrieval.Retrieval
    output: PlannerOutput | None = None
    verdict: Verdict | None = None
    execution: ExecutionReport | None = None
    error: str = ""
    """why nothing ran: the answer was no plan, or the plan does not verify"""
    replans: list[PlannerOutput] = field(default_factory=list)
    """the planner's answers to the executor's feedback"""


def plan_and_execute(
    env: gym.Env,
    planner: Planner,
    instruction: str | None = None,
    retriever: retrieval.FactRetriever | None = None,
    max_replans: int = 2,
) -> PlanningRun:
    """Plan for `instruction` (default: the env's own, `unwrapped.instruction`) from the facts `retriever`
    keeps (default: `FactRetriever()`, the default ranker), verify the plan from the env's atoms and run it
    (after `reset`), re-planning through `planner` at most `max_replans` times. A refusal, an answer that
    is no plan and a plan that does not verify run nothing."""
    u = env.unwrapped
    instruction = instruction or u.instruction
    retriever = retriever or retrieval.FactRetriever()
    graph = u.scene_graph()
    run = PlanningRun(instruction, retriever.retrieve(scene_facts(graph), instruction))
    try:
        run.output = planner.plan(instruction, run.retrieval.facts, entities(graph))
    except PlanOutputError as error:
        run.error = str(error)
        return run
    run.verdict = verify(run.output.plan, u.predicates(), graph)
    if not run.verdict.ok:
        run.error = f"the plan does not verify: {run.verdict.message}"
        return run
    if not run.output.plan.feasible:
        return run

    def replan(feedback: str) -> Plan:
        now = u.scene_graph()
        asked = with_feedback(instruction, feedback)
        facts = retriever.retrieve(scene_facts(now), asked).facts
        try:
            output = planner.plan(asked, facts, entities(now))
        except PlanOutputError as error:
            raise PlanRejected(str(error)) from None
        run.replans.append(output)
        return output.plan

    run.execution = execute(env, run.output.plan, max_replans, replan)
    return run


class PlanningPolicy(DrivesEnv):
    """`plan_and_execute` as a policy of `embodylab.rollout.play_episode` (which resets the env and
    counts, and renders, every step the skills take); `run` is the last episode's `PlanningRun`."""

    def __init__(
        self,
        planner: Planner,
        instruction: str | None = None,
        retriever: retrieval.FactRetriever | None = None,
        max_replans: int = 2,
    ):
        self.planner, self.instruction, self.retriever = planner, instruction, retriever
        self.max_replans = max_replans
        self.run: PlanningRun | None = None

    def drive(self, env: gym.Env) -> None:
        self.run = plan_and_execute(env, self.planner, self.instruction, self.retriever, self.max_replans)
