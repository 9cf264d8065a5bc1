"""dreamer_v1 (see README.md)."""
