"""The lifecycle operations: one module each, all on the same skeleton (operation.py)."""
