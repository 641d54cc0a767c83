"""The registry of scripted experts, keyed by env class: `@expert_for(EnvClass)` and `make_expert(env)`.

`make_expert` looks the env's class up along its MRO, so an expert registered for a base class (the household
oracle for `HouseholdEnv`) serves every task derived from it unless a subclass has its own.
"""

from __future__ import annotations

_EXPERTS: dict[type, type] = {}


def expert_for(env_class: type):
    """Class decorator: register the decorated expert for `env_class` and its subclasses."""

    def register(expert_class: type) -> type:
        _EXPERTS[env_class] = expert_class
        return expert_class

    return register


def expert_class(env_class: type) -> type:
    """The expert registered for `env_class` or its nearest base class."""
    for cls in env_class.__mro__:
        if cls in _EXPERTS:
            return _EXPERTS[cls]
    names = ", ".join(sorted(cls.__name__ for cls in _EXPERTS))
    raise ValueError(f"no scripted expert for {env_class.__name__}; experts exist for: {names}")


def make_expert(env):
    """A new expert for `env` (a Gymnasium env, wrapped or not, or a PettingZoo team env)."""
    return expert_class(type(env.unwrapped))(env)
