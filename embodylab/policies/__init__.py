"""Policies: off-policy RL, bandit curricula and the pieces built on them."""
