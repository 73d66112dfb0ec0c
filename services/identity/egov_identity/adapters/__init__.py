"""The outside world behind small interfaces: authoritative sources (civil registry, company
register, KYC providers) and the synthetic population that stands in for them in development."""
