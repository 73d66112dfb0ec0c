"""Shared fixtures for every test suite live in egov_testing.pytest_plugin."""

pytest_plugins = ["egov_testing.pytest_plugin"]
