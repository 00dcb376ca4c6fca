"""``python -m nnref.cli``: the ``nnref`` command, as ``python -m nnref`` runs it."""

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
