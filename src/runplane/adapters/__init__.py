"""Implementations of the ports, named by technology."""
