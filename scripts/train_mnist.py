#!/usr/bin/env python
"""Same as `nnref train`: see `python scripts/train_mnist.py --help`."""

import sys

from nnref.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
