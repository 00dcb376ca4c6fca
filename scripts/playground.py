#!/usr/bin/env python
"""Same as `nnref playground`: see `python scripts/playground.py --help`."""

import sys

from nnref.cli import main

if __name__ == "__main__":
    sys.exit(main(["playground", *sys.argv[1:]]))
