"""The project's main job (`make demo`): the World Models Doom pipeline on the `small` preset (V, M, a controller
evolved in M's dream, evaluated over 100 real games; resumes and skips finished stages), then the results
tables and README sections."""
from __future__ import annotations

import runpy
import sys


def main() -> None:
    from ha2018.__main__ import main as ha2018_main
    code = ha2018_main(["all", "--task", "doom_take_cover", "--preset", "small"])
    if code:
        sys.exit(code)
    runpy.run_module("tools.results", run_name="__main__")


if __name__ == "__main__":
    main()
