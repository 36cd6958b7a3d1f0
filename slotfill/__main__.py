"""`python -m slotfill`: the same command line as the `slotfill` command."""

from slotfill.cli import main

if __name__ == "__main__":
    main()
