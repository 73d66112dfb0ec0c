"""identity service: Digital ID, identity proofing, OIDC."""
