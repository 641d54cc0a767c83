"""The household suite: procedural apartments, a mobile manipulator, a symbolic layer and three tasks."""
