"""``python -m shadowlab``: the command line."""

from shadowlab.cli import app

app()
