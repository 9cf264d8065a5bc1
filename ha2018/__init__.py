"""ha2018 (see README.md)."""
