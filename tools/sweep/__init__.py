"""Reproduction grids on Ray: ``python -m tools.sweep <paper> --grid <name>`` (see tools/README.md).

Grids are data (``<paper>/grids.yaml``, ``tools/grids/<name>.yaml``); cells are ordinary run directories made
by each paper's own command line, run as Ray tasks in processes of their own.
"""
from tools.sweep.grids import Cell, GridError, load_grid

__all__ = ["Cell", "GridError", "load_grid"]
