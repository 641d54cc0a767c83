"""Multi-armed bandits that pick the next task variant (an arm) of a curriculum.

Every bandit follows one interface, `Bandit`: `select() -> arm`, `update(arm, reward)` and
`probabilities()` (the distribution of the next `select()`, for logging); all randomness comes from the
`numpy.random.Generator` it was given, so a seeded bandit replays the same choices.

Two choices serve the curriculum's reward, absolute learning progress, which is non-stationary (an arm
stops paying once it is learned) and small, of unknown scale (about 0.01 to 0.2):

- Discounting. Each update first multiplies the evidence gathered so far by `discount` (gamma), so a
  bandit remembers about 1 / (1 - gamma) updates (default 0.995: the last ~200 episodes) and follows a best arm that changes ("discounted UCB",
  Garivier & Moulines 2011; the same forgetting for Thompson sampling's posterior and the gradient
  bandit's preferences). `discount=1` gives the stationary textbook algorithm.
- Scale-free rewards. Exploration bonuses, posterior widths and gradient steps are measured in units of
  the pooled (discounted) standard deviation of all rewards seen, so one configuration serves Bernoulli
  rewards in [0, 1] and learning progress alike.

`make_bandit(name, n_arms, rng, config)` builds one by name: `ucb`, `thompson`, `gradient` or `uniform`
(the no-curriculum baseline).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class UCBConfig:
    exploration: float = 1.0
    """c in mean + c * scale * sqrt(ln n / n_arm); scale is the rewards' pooled standard deviation."""
    discount: float = 0.995
    """gamma: evidence weight per update; 1 is stationary UCB1."""


@dataclass
class ThompsonConfig:
    discount: float = 0.995
    """gamma: evidence weight per update; 1 is stationary Thompson sampling."""


@dataclass
class GradientConfig:
    step_size: float = 0.1
    """alpha: preference step per unit of standardised advantage."""
    discount: float = 0.995
    """gamma: weight per update of the baseline's rewards and of the preferences; 1 is the textbook
    gradient bandit (baseline = running mean)."""


@dataclass
class UniformConfig:
    pass


class Bandit:
    """Base of the bandits: discounted per-arm and pooled reward statistics, and the interface.

    `counts` [n_arms] and `sums` [n_arms] are the discounted pulls and reward sums of each arm."""

    def __init__(self, n_arms: int, rng: np.random.Generator, discount: float = 1.0):
        if n_arms < 1:
            raise ValueError(f"a bandit needs at least one arm; got n_arms={n_arms}")
        if not 0.0 < discount <= 1.0:
            raise ValueError(f"discount must lie in (0, 1]; got {discount}")
        self.n_arms, self.rng, self.discount = int(n_arms), rng, float(discount)
        self.counts = np.zeros(self.n_arms)
        self.sums = np.zeros(self.n_arms)
        self._weight = self._reward_sum = self._reward_sq_sum = 0.0

    def select(self) -> int:
        """The arm to play next."""
        raise NotImplementedError

    def probabilities(self) -> np.ndarray:
        """[n_arms] probability that the next `select()` returns each arm; draws nothing from `rng`."""
        raise NotImplementedError

    def update(self, arm: int, reward: float) -> None:
        """Record `reward` for playing `arm`."""
        if not 0 <= arm < self.n_arms:
            raise ValueError(f"arm {arm} out of range; valid arms: 0..{self.n_arms - 1}")
        if not math.isfinite(reward):
            raise ValueError(f"reward must be finite; got {reward}")
        gamma = self.discount
        self.counts *= gamma
        self.sums *= gamma
        self.counts[arm] += 1.0
        self.sums[arm] += reward
        self._weight = gamma * self._weight + 1.0
        self._reward_sum = gamma * self._reward_sum + reward
        self._reward_sq_sum = gamma * self._reward_sq_sum + reward * reward

    @property
    def means(self) -> np.ndarray:
        """[n_arms] discounted mean reward of each arm; NaN for an arm never played."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / self.counts, np.nan)

    def reward_mean(self) -> float:
        """Discounted mean of all rewards seen (0 before the first)."""
        return self._reward_sum / self._weight if self._weight else 0.0

    def reward_scale(self) -> float:
        """Discounted standard deviation of all rewards seen, pooled over arms (0 before two differ)."""
        if not self._weight:
            return 0.0
        mean = self._reward_sum / self._weight
        return math.sqrt(max(self._reward_sq_sum / self._weight - mean * mean, 0.0))

    def _untried(self) -> np.ndarray:
        return np.flatnonzero(self.counts == 0)

    def _random_best(self, values: np.ndarray) -> int:
        """Index of the largest of `values`, ties broken at random."""
        best = np.flatnonzero(values == values.max())
        return int(best[0]) if best.size == 1 else int(self.rng.choice(best))


class UCB1(Bandit):
    """Upper confidence bound: play the arm of largest mean + c * scale * sqrt(ln n / n_arm), untried arms
    first (Auer et al. 2002; discounted counts after Garivier & Moulines 2011)."""

    def __init__(self, n_arms: int, rng: np.random.Generator, config: UCBConfig | None = None):
        self.config = config or UCBConfig()
        super().__init__(n_arms, rng, self.config.discount)

    def indices(self) -> np.ndarray:
        """[n_arms] upper confidence bounds; +inf for untried arms."""
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = np.sqrt(math.log(max(self.counts.sum(), 1.0)) / self.counts)
            return np.where(
                self.counts > 0, self.means + self.config.exploration * self.reward_scale() * bonus, np.inf
            )

    def select(self) -> int:
        return self._random_best(self.indices())

    def probabilities(self) -> np.ndarray:
        indices = self.indices()
        best = indices == indices.max()
        return best / best.sum()


class ThompsonSampling(Bandit):
    """Gaussian Thompson sampling: draw each arm's mean from N(mean, scale^2 / n_arm) and play the best
    draw, untried arms first.

    A Gaussian posterior (flat prior, noise = the pooled reward scale) rather than Beta-Bernoulli because
    learning progress is continuous; sampling rather than optimism because the draws already explore in
    proportion to the remaining doubt, and discounting lets that doubt regrow on arms left unplayed."""

    _PROBE_SAMPLES = 2000

    def __init__(self, n_arms: int, rng: np.random.Generator, config: ThompsonConfig | None = None):
        self.config = config or ThompsonConfig()
        super().__init__(n_arms, rng, self.config.discount)
        # probabilities() estimates by sampling; its own stream keeps logging from changing the choices.
        self._probe_rng = rng.spawn(1)[0]

    def _draws(self, rng: np.random.Generator, size: tuple[int, ...]) -> np.ndarray:
        """[*size, n_arms] posterior draws of the arms' means (all arms tried)."""
        std = self.reward_scale() / np.sqrt(self.counts)
        return self.means + std * rng.standard_normal((*size, self.n_arms))

    def select(self) -> int:
        untried = self._untried()
        if untried.size:
            return int(self.rng.choice(untried))
        return self._random_best(self._draws(self.rng, ()))

    def probabilities(self) -> np.ndarray:
        untried = self._untried()
        if untried.size:
            return np.isin(np.arange(self.n_arms), untried) / untried.size
        draws = self._draws(self._probe_rng, (self._PROBE_SAMPLES,))
        return np.bincount(draws.argmax(axis=1), minlength=self.n_arms) / self._PROBE_SAMPLES


class GradientBandit(Bandit):
    """Softmax over preferences H, moved by the standardised advantage of each reward over a baseline,
    the discounted running mean of all rewards (Sutton & Barto 2018, section 2.8):
    H_b += alpha * A * (1[b = arm] - pi_b), A = clip((reward - baseline) / scale, -3, 3).

    With discount < 1 the preferences also decay towards uniform, so a once-best arm's lead fades unless
    it keeps paying; without it a saturated softmax would almost never try the new best arm."""

    # A first surprise after a long run of equal rewards would otherwise be ~sqrt(n) scales away.
    _MAX_ADVANTAGE = 3.0

    def __init__(self, n_arms: int, rng: np.random.Generator, config: GradientConfig | None = None):
        self.config = config or GradientConfig()
        super().__init__(n_arms, rng, self.config.discount)
        self.preferences = np.zeros(self.n_arms)

    def probabilities(self) -> np.ndarray:
        exp = np.exp(self.preferences - self.preferences.max())
        return exp / exp.sum()

    def select(self) -> int:
        return int(self.rng.choice(self.n_arms, p=self.probabilities()))

    def update(self, arm: int, reward: float) -> None:
        baseline, first = self.reward_mean(), self._weight == 0
        super().update(arm, reward)
        self.preferences *= self.discount
        scale = self.reward_scale()
        if first or scale == 0.0:  # no reward has differed yet: nothing to prefer
            return
        advantage = np.clip((reward - baseline) / scale, -self._MAX_ADVANTAGE, self._MAX_ADVANTAGE)
        step = -self.probabilities()
        step[arm] += 1.0
        self.preferences += self.config.step_size * advantage * step


class UniformSampling(Bandit):
    """Every arm equally likely, whatever the rewards: the no-curriculum baseline."""

    def __init__(self, n_arms: int, rng: np.random.Generator, config: UniformConfig | None = None):
        self.config = config or UniformConfig()
        super().__init__(n_arms, rng)

    def select(self) -> int:
        return int(self.rng.integers(self.n_arms))

    def probabilities(self) -> np.ndarray:
        return np.full(self.n_arms, 1.0 / self.n_arms)


BANDITS: dict[str, tuple[type[Bandit], type]] = {
    "ucb": (UCB1, UCBConfig),
    "thompson": (ThompsonSampling, ThompsonConfig),
    "gradient": (GradientBandit, GradientConfig),
    "uniform": (UniformSampling, UniformConfig),
}


def make_bandit(name: str, n_arms: int, rng: np.random.Generator, config=None) -> Bandit:
    """The bandit called `name` (a key of `BANDITS`) over `n_arms` arms; `config` defaults to its
    config class's defaults and must be an instance of that class."""
    if name not in BANDITS:
        raise ValueError(f"unknown bandit {name!r}; valid bandits: {', '.join(map(repr, BANDITS))}")
    cls, config_cls = BANDITS[name]
    if config is not None and not isinstance(config, config_cls):
        raise TypeError(f"bandit {name!r} takes a {config_cls.__name__}; got {type(config).__name__}")
    return cls(n_arms, rng, config)
