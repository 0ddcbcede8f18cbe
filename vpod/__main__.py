"""``python -m vpod`` runs the command-line interface."""

from vpod.cli import main

main()
