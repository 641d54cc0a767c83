"""TeamCarry-v0's observation layout: named columns, the documented table and the observation agree."""

from __future__ import annotations

import numpy as np
import pytest

import embodylab.envs.team.carry as carry
from embodylab.envs.team import make
from embodylab.envs.team.observation import ObservationLayout


@pytest.mark.parametrize("max_agents", [1, 3, 8])
def test_every_column_is_named_exactly_once(max_agents):
    layout = ObservationLayout(max_agents)
    named = []
    for block in layout.blocks:
        for field in block.fields:
            named.extend(np.ravel(layout.columns(block.name, field.name)).tolist())
        if block.masked:
            named.extend(layout.mask(block.name).tolist())
    assert sorted(named) == list(range(layout.size))


def test_env_docstring_holds_the_layouts_table_and_size():
    assert ObservationLayout(carry.MAX_AGENTS).table() in carry.__doc__
    assert make("TeamCarry-v0", n_agents=2).observation_space("agent_0").shape == (
        ObservationLayout(carry.MAX_AGENTS).size,
    )


def test_unknown_block_and_field_name_the_valid_choices():
    layout = ObservationLayout(8)
    with pytest.raises(ValueError, match="valid blocks: self, payload, goal, handles, others, obstacles"):
        layout.columns("robot", "position")
    with pytest.raises(ValueError, match="valid fields: position, normal, taken"):
        layout.columns("handles", "height")


def test_named_columns_read_the_payload_and_mask_entries():
    env = make("TeamCarry-v0", n_agents=3)
    obs, _ = env.reset(seed=0)
    layout = ObservationLayout(env.max_agents)
    row = obs["agent_0"]
    np.testing.assert_allclose(
        row[layout.columns("payload", "half_extents")], env.layout.half_extents, rtol=1e-6
    )
    np.testing.assert_array_equal(row[layout.mask("others")], [1, 1] + [0] * (env.max_agents - 3))
    assert row[layout.mask("handles")].sum() == len(env.layout.handles)
