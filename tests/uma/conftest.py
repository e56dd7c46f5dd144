"""UMA tests share the wired-up world of tests/world.py."""

from tests.world import World, build_world, connect_rs, world  # noqa: F401
