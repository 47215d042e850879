"""Protocols services and workers depend on, one module per concern."""
