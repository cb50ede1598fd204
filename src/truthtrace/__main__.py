"""``python -m truthtrace``: the ``truthtrace`` command (what ``torchrun -m truthtrace extract ...`` runs)."""

import sys

from truthtrace.cli import main

if __name__ == "__main__":
    sys.exit(main())  # a failing rank must exit non-zero, so torchrun stops the others
