"""Flask CLI commands of this area: ``flask create-user EMAIL --role ROLE [--password P]``."""

import click
from flask import Flask

from ecom.actor import Actor
from ecom.errors import EcomError
from ecom.identity.models import Role
from ecom.unit_of_work import committed

# Who the audit log names for a change made from the command line.
CLI = Actor("system:cli")


def register(app: Flask) -> None:
    """Add this area's commands to ``app.cli``."""

    @app.cli.command("create-user")
    @click.argument("email")
    @click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.CUSTOMER.value,
                  show_default=True)
    @click.option("--password", help="Prompted for (hidden, twice) when left out.")
    @click.option("--full-name", default="", help="The user's name.")
    def create_user_command(email: str, role: str, password: str | None, full_name: str) -> None:
        """Create a user, e.g. the first admin."""
        from ecom.identity.services import create_user

        if password is None:
            password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            user = committed(lambda: create_user(email, password, full_name=full_name, role=role, actor=CLI))
        except EcomError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Created {user.role} {user.email} (id {user.id}).")
