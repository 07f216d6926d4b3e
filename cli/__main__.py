"""`python -m cli`: the same as the `safety-chain` command."""

from cli.main import app

app(prog_name="safety-chain")
