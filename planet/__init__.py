"""planet (see README.md)."""
