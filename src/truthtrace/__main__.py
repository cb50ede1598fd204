"""``python -m truthtrace``: the ``truthtrace`` command (what ``torchrun -m truthtrace extract ...`` runs)."""

from truthtrace.cli import main

if __name__ == "__main__":
    main()
