"""Certificate, CMS and token helpers shared by more than one service."""
