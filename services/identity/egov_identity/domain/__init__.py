"""Identity domain: proofing, assurance levels, authentication, OIDC tokens, representation.

Plain Python over the storage layer; imports neither grpc nor generated code.
"""
