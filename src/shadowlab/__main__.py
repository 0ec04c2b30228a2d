"""``python -m shadowlab``: the command line."""

from shadowlab.cli import app

if __name__ == "__main__":
    app()
