"""The Flask CLI: every area registers its own commands here; ``seed-demo`` composes them all."""

import click
from flask import Flask

from ecom import runtime
from ecom.errors import EcomError
from ecom.unit_of_work import committed


def register_cli(app: Flask) -> None:
    from ecom.identity.cli import register as register_identity
    from workers.cli import register as register_workers

    register_identity(app)
    register_workers(app)
    app.cli.add_command(seed_demo_command)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load the demo catalog, stores, staff users and a few orders (safe to run again)."""
    from ecom.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo

    try:
        summary = committed(seed_demo)
    except EcomError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Demo data: {summary}")
    # The address `make run` serves on: the same PORT setting.
    click.echo(f"Back office: http://127.0.0.1:{runtime.settings()['PORT']}/admin/  — sign in with any of:")
    for email, role, _ in DEMO_USERS:
        click.echo(f"  {role.value:<13} {email} / {DEMO_PASSWORD}")
    click.echo(f"Voucher to try at checkout: {summary['voucher']} (10 % off from 30.00); "
               "jackets are 20 % off.")
    if summary.get("returnable_order"):
        click.echo(f"Returns: the queue is under Sales → Returns; order {summary['returnable_order']} "
                   "(customer@example.com) is delivered and can be returned: "
                   f"POST /api/v1/orders/{summary['returnable_order']}/returns.")
