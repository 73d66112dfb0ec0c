"""Fixtures of the verify portal's unit tests (helpers live in verify_portal_fixtures)."""

from verify_portal_fixtures import client, services

__all__ = ["client", "services"]
