"""``python -m flowint``: the same as the ``flowint`` command (see :mod:`flowint.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
