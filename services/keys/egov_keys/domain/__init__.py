"""Keys domain: CA hierarchy, credentials, sole control (SAD), audit chain, CRL/OCSP/TSA.

Plain Python: imports neither grpc nor generated code.
"""
