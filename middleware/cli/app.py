"""The `coatcheck` typer application; command groups register themselves on it."""

import typer

app = typer.Typer(
    name="coatcheck",
    help="coatcheck: a PII vault in front of your chatbot.",
    no_args_is_help=True,
    add_completion=False,
)
