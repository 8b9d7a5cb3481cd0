"""The CLI as shop/cli.py composes it: every area's commands, each committing once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.audit.models import AuditLog
from ecom.identity.models import User

AREA_COMMANDS = {
    "create-user",                                    # ecom/identity/cli.py
    "seed-demo",                                      # shop/cli.py (ecom/demo.py)
    "worker", "relay-outbox", "expire-reservations", "purge-guest-carts",  # workers/cli.py
    "retry-gateway-calls", "import-products",         # workers/cli.py
}


def test_every_area_registers_its_commands(app):
    assert set(app.cli.list_commands(None)) >= AREA_COMMANDS


@pytest.mark.slow
def test_seed_demo_prints_the_address_the_app_is_served_on(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "PORT", 8123)

    result = app.test_cli_runner().invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert "Back office: http://127.0.0.1:8123/admin/" in result.output


def test_seed_demo_refuses_to_create_demo_users_in_production(app, db, monkeypatch):
    # given the app running in production
    monkeypatch.setitem(app.config, "ENV_NAME", "production")

    # when seed-demo is run
    result = app.test_cli_runner().invoke(args=["seed-demo"])

    # then it fails with a clear message and creates no user
    assert result.exit_code != 0
    assert "does not run in production" in result.output
    assert db.session.scalar(select(User).where(User.email == "admin@example.com")) is None


def test_create_user_commits_the_user(app, db):
    result = app.test_cli_runner().invoke(
        args=["create-user", "ops@example.com", "--role", "admin", "--password", "a-long-password-1"])

    assert result.exit_code == 0, result.output
    db.session.expire_all()
    user = db.session.scalar(select(User).where(User.email == "ops@example.com"))
    assert user.role == "admin"
    # and the audit log names the command line as the author
    entry = db.session.scalar(select(AuditLog).where(AuditLog.entity == "users",
                                                     AuditLog.entity_id == str(user.id)))
    assert (entry.action, entry.actor, entry.user_id) == ("create", "system:cli", None)


def test_create_user_refuses_a_duplicate_with_a_clear_error(app, db):
    runner = app.test_cli_runner()
    runner.invoke(args=["create-user", "twice@example.com", "--password", "a-long-password-1"])

    again = runner.invoke(args=["create-user", "twice@example.com", "--password", "a-long-password-1"])

    assert again.exit_code == 1 and "Error:" in again.output


def test_import_products_refuses_an_empty_file_with_a_clear_error(app, db, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")

    result = app.test_cli_runner().invoke(args=["import-products", str(path)])

    assert result.exit_code == 1
    assert "The file is empty." in result.output
