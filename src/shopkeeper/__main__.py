"""`python -m shopkeeper` is the `shopkeeper` command."""

from shopkeeper.cli import app

app()
