"""A learned state value for planning over a world model: TD-MPC2's terminal value, fitted offline.

MPPI over the learned reward sees `horizon` control steps (half a second on LabPush), and LabPush's reward
(minus the cube's distance to its goal) does not change until the tool reaches the cube: a planner that
scores plans by the rewards inside its horizon alone has nothing that draws the tool round behind the
cube. TD-MPC2 closes a plan with a learned value of the state it ends in; this module fits one:

    V(s_t) ~ E[r_t + gamma r_{t+1} + gamma^2 r_{t+2} + ...]   (r_t: the env's reward after step t)

by regression on the discounted Monte-Carlo returns of the world-model dataset, i.e. the value of the
policy that collected the data (noisy experts on LabPush): from a state with the tool behind the cube,
that policy pushes it goalwards next, so such states are worth more than their reward says. A planner
then scores a plan as sum_{h<H} gamma^h r(s_{h+1}) + gamma^H V(s_H), every term read off the models.

Two refinements, both on by default (`TrainValueConfig`): the value learns the return less the state's own
reward held for ever, r(s) / (1 - gamma), which the planner adds back from the world model's reward
read-out (`reward_baseline`: the learned part is only what the future adds, and the score keeps the
reward's precision near the goal); and it fits the 0.9-expectile of the returns rather than their mean
(`expectile`, IQL's optimistic value: the better of the futures the data holds from a state).
(Measurements of the variants: docs/experiments.md, "Learned value".)

Episodes end by truncation (a time limit), not at a terminal state; the return of a state near the end is
completed as if the last reward stayed for ever (`r_T / (1 - gamma)`), the steady state of a tabletop scene
whose objects have come to rest. The value sees the same object-centric state the world model predicts
(object features, categories, the agent's tool-centre-point state, the goal), so it can score predicted
states; it pools over objects (mean and max over the real ones), so it takes any number of them.

    embodylab train-value --dataset runs/data/push --out runs/value
    embodylab plan-wm runs/wm --cost learned --value runs/value
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from embodylab.core.scene import OBJECT_FEATURE_DIM, POSITION
from embodylab.world_models.config import TrainValueConfig
from embodylab.world_models.data import CATEGORIES, WorldModelData, check_categories, load_dataset
from embodylab.world_models.object_centric import AGENT_DIM, AGENT_SLICE, MIN_STD, RELATIVE_SCALE

WEIGHTS = "value.pt"
CONFIG = "value.json"


class ValueCheckpointError(ValueError):
    """A value checkpoint that is missing, unreadable or corrupt; the message names the path."""


def default_discount(episode_steps: int) -> float:
    """TD-MPC2's discount for episodes of `episode_steps` steps: (T/5 - 1) / (T/5), within [0.95, 0.995]."""
    horizon = episode_steps / 5
    return float(np.clip((horizon - 1) / horizon, 0.95, 0.995))


def _mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, outputs)
    )


class StateValue(nn.Module):
    """V(objects [B, N, 16], categories [B, N], mask [B, N], agent [B, 7], goal [B, 3]) -> [B] (return units).

    Each object is encoded with its positions relative to the goal and to the tool centre point (scaled by
    `RELATIVE_SCALE`), then the real objects are pooled (mean and max), so the value takes any number of
    objects in any order."""

    def __init__(
        self, hidden: int = 128, category_dim: int = 8, discount: float = 0.95, reward_baseline: bool = False
    ):
        super().__init__()
        self.discount = float(discount)
        self.reward_baseline = bool(reward_baseline)
        self.category = nn.Embedding(len(CATEGORIES), category_dim)
        self.object_net = _mlp(OBJECT_FEATURE_DIM + 6 + category_dim, hidden, hidden)
        self.head = _mlp(2 * hidden + AGENT_DIM + 3, hidden, 1)
        for name, size in (("object", OBJECT_FEATURE_DIM), ("agent", AGENT_DIM)):
            self.register_buffer(f"{name}_mean", torch.zeros(size))
            self.register_buffer(f"{name}_std", torch.ones(size))
        self.register_buffer("return_mean", torch.zeros(()))
        self.register_buffer("return_std", torch.ones(()))

    def fit_normaliser(self, objects, mask, agent, returns) -> None:
        """Input and output statistics from training tensors (real objects only)."""
        real = objects[mask]
        self.object_mean.copy_(real.mean(0))
        self.object_std.copy_(real.std(0).clamp_min(MIN_STD))
        self.agent_mean.copy_(agent.mean(0))
        self.agent_std.copy_(agent.std(0).clamp_min(MIN_STD))
        self.return_mean.copy_(returns.mean())
        self.return_std.copy_(returns.std().clamp_min(MIN_STD))

    def normalised(self, objects, categories, mask, agent, goal) -> torch.Tensor:
        """The value in units of the training returns' std, about their mean (what the loss compares)."""
        tcp = agent[:, None, :3]
        relative = (
            torch.cat([objects[..., POSITION] - goal[:, None], objects[..., POSITION] - tcp], -1)
            / RELATIVE_SCALE
        )
        tokens = torch.cat(
            [(objects - self.object_mean) / self.object_std, relative, self.category(categories)], -1
        )
        encoded = self.object_net(tokens)
        weights = mask.float()[..., None]
        pooled_mean = (encoded * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        pooled_max = encoded.masked_fill(~mask[..., None], -1e4).max(1).values
        own = torch.cat(
            [(agent - self.agent_mean) / self.agent_std, (agent[:, :3] - goal) / RELATIVE_SCALE], -1
        )
        return self.head(torch.cat([pooled_mean, pooled_max, own], -1))[:, 0]

    def forward(self, objects, categories, mask, agent, goal) -> torch.Tensor:
        return self.normalised(objects, categories, mask, agent, goal) * self.return_std + self.return_mean


def discounted_returns(rewards: np.ndarray, lengths: np.ndarray, discount: float) -> np.ndarray:
    """float32 [E, T]: the return of the state each step starts from, over the episode's real steps and then
    its last reward for ever (see the module docstring); entries past an episode's length are 0."""
    returns = np.zeros(rewards.shape, np.float64)
    for e, length in enumerate(lengths):
        following = rewards[e, length - 1] / (1.0 - discount)  # the steady-state tail after the last step
        for t in range(length - 1, -1, -1):
            following = rewards[e, t] + discount * following
            returns[e, t] = following
    return returns.astype(np.float32)


def _step_tensors(data: WorldModelData, returns: np.ndarray, first: int = 0) -> dict[str, torch.Tensor]:
    """Every real step of `data` from step `first` on as one flat batch: the state it starts from and its
    return."""
    steps = np.arange(data.actions.shape[1])[None]
    episode, step = np.nonzero((steps < data.lengths[:, None]) & (steps >= first))
    return {
        "objects": torch.from_numpy(data.features[episode, step]),
        "categories": torch.from_numpy(data.categories[episode]),
        "mask": torch.from_numpy(data.mask[episode]),
        "agent": torch.from_numpy(data.proprio[episode, step][:, AGENT_SLICE]),
        "goal": torch.from_numpy(data.goal[episode, step][:, :3]),
        "returns": torch.from_numpy(returns[episode, step]),
    }


def _loss(value: StateValue, batch: dict[str, torch.Tensor], expectile: float = 0.5) -> torch.Tensor:
    """The expectile loss of the normalised value (twice it, so that the 0.5-expectile is the MSE)."""
    target = (batch["returns"] - value.return_mean) / value.return_std
    error = target - value.normalised(
        batch["objects"], batch["categories"], batch["mask"], batch["agent"], batch["goal"]
    )
    weight = torch.where(error < 0, 1.0 - expectile, expectile)
    return 2.0 * (weight * error**2).mean()


@dataclass
class ValueFit:
    """What `fit_value` returns: the value (eval mode) and a summary of its training."""

    value: StateValue
    summary: dict = field(default_factory=dict)


def fit_value(
    data: WorldModelData, config: TrainValueConfig = TrainValueConfig(), progress: bool = True
) -> ValueFit:
    """Fits a `StateValue` to the discounted returns of `data` (see the module docstring)."""
    if data.goal.shape[-1] < 3:
        raise ValueError(
            f"the value needs a 3-d goal position; this dataset's goals have {data.goal.shape[-1]}"
        )
    discount = config.discount if config.discount is not None else default_discount(data.actions.shape[1])
    torch.manual_seed(config.seed)
    held_out = np.arange(len(data)) % config.val_every == config.val_every - 1
    if held_out.all() or not held_out.any():
        held_out = np.zeros(len(data), bool)
    returns = discounted_returns(data.rewards, data.lengths, discount)
    first = 0
    if config.reward_baseline:
        # The state's own reward (that of the step which reached it) held for ever is taken off: the value
        # learns what the future adds to it. Step 0's state has no recorded reward, so it is left out.
        returns[:, 1:] -= data.rewards[:, :-1] / (1.0 - discount)
        first = 1
    train = _step_tensors(data.subset(~held_out), returns[~held_out], first)
    val = _step_tensors(data.subset(held_out), returns[held_out], first) if held_out.any() else None
    value = StateValue(config.hidden, config.category_dim, discount, config.reward_baseline)
    value.fit_normaliser(train["objects"], train["mask"], train["agent"], train["returns"])
    optimizer = torch.optim.AdamW(value.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    count = len(train["returns"])
    start = time.perf_counter()
    bar = tqdm(range(config.steps), desc="train-value", unit="step", disable=not progress)
    for _ in bar:
        index = torch.randint(count, (config.batch_size,), generator=generator)
        loss = _loss(value, {k: v[index] for k, v in train.items()}, config.expectile)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    elapsed = time.perf_counter() - start
    value.eval()
    summary = {
        "discount": discount,
        "train_steps": count,
        "steps": config.steps,
        "train_time_s": round(elapsed, 1),
        "train_loss": float(loss.item()),
        "return_mean": float(value.return_mean),
        "return_std": float(value.return_std),
    }
    if val is not None:
        with torch.no_grad():
            summary["val_loss"] = float(_loss(value, val, config.expectile))
            summary["val_rmse"] = float(_loss(value, val)) ** 0.5 * float(value.return_std)
    return ValueFit(value, summary)


def save_value(
    out: str | Path, fit: ValueFit, config: TrainValueConfig, dataset: str | Path | None = None
) -> Path:
    """Writes `value.json` (config, summary) and `value.pt` (the state dict) to the directory `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "discount": fit.value.discount,
        "reward_baseline": fit.value.reward_baseline,
        "hidden": config.hidden,
        "category_dim": config.category_dim,
        "summary": fit.summary,
        "dataset": None if dataset is None else str(dataset),
    }
    (out / CONFIG).write_text(json.dumps(meta, indent=2) + "\n")
    tmp = out / (WEIGHTS + ".tmp")  # write then rename: an interrupted save leaves no half-written file
    torch.save(fit.value.state_dict(), tmp)
    tmp.replace(out / WEIGHTS)
    return out


def load_value(path: str | Path) -> StateValue:
    """The value saved by `save_value` (or `embodylab train-value`) in the directory `path`, in eval mode.

    Raises:
        ValueCheckpointError: no value there, or files that cannot be read or do not fit together."""
    path = Path(path)
    if not (path / CONFIG).is_file() or not (path / WEIGHTS).is_file():
        raise ValueCheckpointError(f"no value at {path} (expected {path / CONFIG} and {path / WEIGHTS})")
    try:
        meta = json.loads((path / CONFIG).read_text())
        value = StateValue(
            int(meta["hidden"]),
            int(meta["category_dim"]),
            float(meta["discount"]),
            bool(meta.get("reward_baseline", False)),
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise ValueCheckpointError(f"{path / CONFIG} is not a value config: {err}") from err
    try:
        state = torch.load(path / WEIGHTS, map_location="cpu", weights_only=True)
        value.load_state_dict(state)
    except Exception as err:  # torch raises many kinds (RuntimeError, UnpicklingError, EOFError...)
        raise ValueCheckpointError(f"cannot read the value weights {path / WEIGHTS}: {err}") from err
    return value.eval()


def train_value(config: TrainValueConfig) -> dict:
    """Loads the world-model dataset `config.dataset`, fits the value and saves it to `config.out`; its
    summary."""
    data = load_dataset(config.dataset)
    check_categories(data)
    fit = fit_value(data, config)
    save_value(config.out, fit, config, config.dataset)
    return fit.summary
