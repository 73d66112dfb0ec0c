"""Registry domain: documents, their status history, and the rules for changing them.

Imports neither grpc nor generated code.
"""
