#!/usr/bin/env python
"""Same as `nnref bench`: see `python scripts/bench.py --help`."""

import sys

from nnref.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
