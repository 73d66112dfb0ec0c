"""Fixtures of the verify portal's integration tests (helpers live in verify_portal_env)."""
