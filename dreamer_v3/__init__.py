"""dreamer_v3 (see README.md)."""
