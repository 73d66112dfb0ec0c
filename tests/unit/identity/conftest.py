"""Fixtures of the identity unit tests (helpers live in identity_world.py)."""

from identity_world import population, world

__all__ = ["population", "world"]
