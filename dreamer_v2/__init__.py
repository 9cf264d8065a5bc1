"""dreamer_v2 (see README.md)."""
