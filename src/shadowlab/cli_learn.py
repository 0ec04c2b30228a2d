"""``shadowlab learn ...``: machine learning across related systems from classical shadows.

Registered on :data:`shadowlab.cli.app` as the ``learn`` command group when imported. The
commands of this group live in this module and in the ``cli_learn_*`` modules imported at the
bottom.
"""

from __future__ import annotations

import typer

from shadowlab.cli import app

learn_app = typer.Typer(
    name="learn",
    help="Learn across related systems: predict properties of unmeasured states from shadows of others, "
         "classify phases (Huang et al., Science 2022; Lewis et al., Nat. Commun. 2024).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(learn_app, name="learn")
