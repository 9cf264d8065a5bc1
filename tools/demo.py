"""The project's main job (`make demo`). Until a paper's demo lands, it regenerates the results."""
from __future__ import annotations

import runpy


def main() -> None:
    runpy.run_module("tools.results", run_name="__main__")


if __name__ == "__main__":
    main()
