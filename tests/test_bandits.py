import numpy as np
import pytest

from embodylab.policies.bandits import (
    BANDITS,
    GradientConfig,
    ThompsonConfig,
    UCBConfig,
    make_bandit,
)

STATIONARY = {
    "ucb": UCBConfig(discount=1.0),
    "thompson": ThompsonConfig(discount=1.0),
    "gradient": GradientConfig(discount=1.0),
}
LEARNING = tuple(STATIONARY)
# Bernoulli arms; the best two are 0.1 apart.
MEANS = np.array([0.3, 0.45, 0.5, 0.6])


def play(bandit, means_at, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative pseudo-regret [steps] and arms played [steps] against Bernoulli arms."""
    rewards = np.random.default_rng(seed)
    regret, arms = np.zeros(steps), np.zeros(steps, dtype=int)
    for t in range(steps):
        means = means_at(t)
        arm = bandit.select()
        bandit.update(arm, float(rewards.random() < means[arm]))
        regret[t], arms[t] = means.max() - means[arm], arm
    return np.cumsum(regret), arms


@pytest.mark.parametrize("name", LEARNING)
def test_regret_on_stationary_arms_grows_sublinearly(name):
    bandit = make_bandit(name, len(MEANS), np.random.default_rng(0), STATIONARY[name])
    regret, arms = play(bandit, lambda t: MEANS, 8000, seed=100)
    # Linear regret (a fixed share of bad pulls) would quadruple from 2000 to 8000 steps.
    assert regret[-1] / regret[1999] < 2.5
    assert (arms[-2000:] == MEANS.argmax()).mean() > 0.9


@pytest.mark.parametrize("name", LEARNING)
def test_share_of_pulls_on_the_best_arm_rises(name):
    bandit = make_bandit(name, len(MEANS), np.random.default_rng(1), STATIONARY[name])
    _, arms = play(bandit, lambda t: MEANS, 4000, seed=101)
    best = arms == MEANS.argmax()
    assert best[:500].mean() < best[-1000:].mean()


@pytest.mark.parametrize("name", LEARNING)
def test_default_config_tracks_a_best_arm_that_changes(name):
    means = np.array([0.2, 0.4, 0.5, 0.8])
    bandit = make_bandit(name, len(means), np.random.default_rng(2), None)
    _, arms = play(bandit, lambda t: means if t < 2000 else means[::-1], 4000, seed=102)
    assert (arms[1500:2000] == 3).mean() > 0.7
    assert (arms[-1000:] == 0).mean() > 0.75


def test_uniform_sampling_ignores_rewards():
    bandit = make_bandit("uniform", 4, np.random.default_rng(0))
    _, arms = play(bandit, lambda t: MEANS, 4000, seed=0)
    np.testing.assert_allclose(np.bincount(arms, minlength=4) / 4000, 0.25, atol=0.03)
    np.testing.assert_allclose(bandit.probabilities(), 0.25)


@pytest.mark.parametrize("name", list(BANDITS))
def test_probabilities_are_a_distribution_and_leave_the_choices_unchanged(name):
    def choices(log: bool) -> list[int]:
        bandit = make_bandit(name, 3, np.random.default_rng(5))
        picked = []
        for t in range(200):
            arm = bandit.select()
            bandit.update(arm, float(arm == t % 3) * 0.1)
            if log:
                p = bandit.probabilities()
                assert p.shape == (3,) and (p >= 0).all() and p.sum() == pytest.approx(1.0)
            picked.append(arm)
        return picked

    assert choices(log=True) == choices(log=False)


@pytest.mark.parametrize("name", list(BANDITS))
def test_a_seeded_bandit_replays_its_choices(name):
    def choices(seed: int) -> list[int]:
        bandit = make_bandit(name, 4, np.random.default_rng(seed))
        _, arms = play(bandit, lambda t: MEANS, 300, seed=7)
        return arms.tolist()

    assert choices(3) == choices(3)
    assert choices(3) != choices(4)


def test_untried_arms_are_played_first_by_ucb_and_thompson():
    for name in ("ucb", "thompson"):
        bandit = make_bandit(name, 5, np.random.default_rng(0))
        arms = []
        for _ in range(5):
            arms.append(bandit.select())
            bandit.update(arms[-1], 1.0)
        assert sorted(arms) == list(range(5))


def test_unknown_bandit_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'ucb', 'thompson', 'gradient', 'uniform'"):
        make_bandit("epsilon_greedy", 3, np.random.default_rng(0))


def test_config_of_another_bandit_is_refused():
    with pytest.raises(TypeError, match="UCBConfig"):
        make_bandit("ucb", 3, np.random.default_rng(0), ThompsonConfig())


@pytest.mark.parametrize(("arm", "reward"), [(3, 0.0), (-1, 0.0), (0, float("nan"))])
def test_bad_updates_raise(arm, reward):
    with pytest.raises(ValueError):
        make_bandit("ucb", 3, np.random.default_rng(0)).update(arm, reward)
