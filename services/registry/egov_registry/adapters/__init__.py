"""The registry's outside world: the tree-head signing key on disk."""
