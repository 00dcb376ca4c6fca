#!/usr/bin/env python
"""Same as `nnref gradcheck`: see `python scripts/gradcheck.py --help`."""

import sys

from nnref.cli import main

if __name__ == "__main__":
    sys.exit(main(["gradcheck", *sys.argv[1:]]))
