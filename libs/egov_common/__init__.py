"""Shared server library: settings, errors, logging, telemetry, server bootstrap, channels."""
