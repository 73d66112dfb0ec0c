"""The outside world behind small interfaces: key custody backends, identity's token verifier."""
