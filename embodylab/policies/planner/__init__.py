"""The planner: English instructions to grounded, verified plans of household skills.

A looped (recurrent-depth) language model, its baselines and real LLM adapters, all decoding under one
grammar of skill calls over the entities of the scene and checked by one symbolic verifier before anything
runs in physics. The module map and the contracts between the parts: `docs/planner_design.md`.
"""
