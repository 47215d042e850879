"""Hosts: registering, heartbeats, host loss detection and admin moves."""
