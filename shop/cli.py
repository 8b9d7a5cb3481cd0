"""The Flask CLI: every area registers its own commands here."""

from flask import Flask


def register_cli(app: Flask) -> None:
    from ecom.catalog.cli import register as register_catalog
    from ecom.identity.cli import register as register_identity
    from workers.cli import register as register_workers

    register_identity(app)
    register_catalog(app)
    register_workers(app)
