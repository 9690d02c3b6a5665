"""``python -m cfrna`` runs the command-line interface."""

from cfrna.cli import main_cli

main_cli()
