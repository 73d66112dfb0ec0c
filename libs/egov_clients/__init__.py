"""Typed Python clients for the egov-trust services, over the generated gRPC stubs."""
