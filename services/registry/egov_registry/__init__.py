"""registry service: register of issued documents and its transparency log."""
