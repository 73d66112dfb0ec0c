"""Test and development fixtures: real service processes, dev PKI, synthetic population."""
