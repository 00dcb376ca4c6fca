"""``python -m nnref``: the ``nnref`` command (also what ``torchrun -m nnref`` runs)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
