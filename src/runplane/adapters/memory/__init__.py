"""In-memory adapters: dict-backed fakes of the ports, for tests and single-process use."""
