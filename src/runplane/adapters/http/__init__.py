"""HTTP clients of the outside world (webhook receivers)."""
