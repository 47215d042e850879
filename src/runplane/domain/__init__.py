"""Pure data and rules. No I/O, and no imports from any other runplane layer."""
