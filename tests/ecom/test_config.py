"""One source of configuration: ``ecom.config.load_config`` reads every variable the README
documents, the README documents every variable it reads, and nothing else reads the environment."""

from __future__ import annotations

import ast
import re
from decimal import Decimal

import pytest

from ecom.config import DEVELOPMENT_WEBHOOK_SECRET, PROJECT_ROOT, load_config

EDGE_AND_DOMAIN_PACKAGES = ("ecom", "admin", "storefront_api", "workers", "shop")
VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*$")


class RecordingEnviron(dict):
    """An environment that remembers every variable asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self.read.add(key)
        return super().__contains__(key)


def readme_variables() -> set[str]:
    """The backticked names in the first column of the README's configuration table."""
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("| variable | default |")
    names: set[str] = set()
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        first_column = line.split("|")[1]
        names |= {name for name in re.findall(r"`([^`]+)`", first_column) if VARIABLE.match(name)}
    return names


@pytest.mark.parametrize("url", ["", "postgresql://u@db.example/shop"])
def test_load_config_reads_exactly_the_variables_the_readme_documents(url):
    environ = RecordingEnviron(DATABASE_URL=url)

    load_config(environ)

    documented = readme_variables()
    assert sorted(documented - environ.read) == [], "documented in the README but never read"
    assert sorted(environ.read - documented) == [], "read by load_config but not in the README"


def test_variables_once_silently_ignored_are_read():
    config = load_config({
        "SHOP_NAME": "Tea & Co", "SMTP_TIMEOUT_SECONDS": "4.5", "NOTIFY_RETRY_INTERVALS": "1, 2,3",
        "RELAY_INTERVAL_SECONDS": "7", "CART_PURGE_INTERVAL_SECONDS": "0", "MAIL_FROM": "hi@tea.example",
        "GATEWAY_RETRY_INTERVAL_SECONDS": "90", "PORT": "9001", "DB_POOL_SIZE": "3",
        "DATABASE_URL": "postgres://u@db.example/shop", "TAX_RATE": "0.2",
    })

    assert (config["SHOP_NAME"], config["SMTP_TIMEOUT_SECONDS"], config["MAIL_FROM"]) == (
        "Tea & Co", 4.5, "hi@tea.example")
    assert config["NOTIFY_RETRY_INTERVALS"] == (1, 2, 3)
    assert (config["RELAY_INTERVAL_SECONDS"], config["CART_PURGE_INTERVAL_SECONDS"],
            config["GATEWAY_RETRY_INTERVAL_SECONDS"], config["PORT"]) == (7, 0, 90, 9001)
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_size"] == 3
    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@db.example/shop"
    assert config["TAX_RATE"] == Decimal("0.2")


def test_defaults_without_any_variable():
    config = load_config({})

    assert (config["PORT"], config["SHOP_NAME"], config["SMTP_TIMEOUT_SECONDS"]) == (8000, "Ecom Shop", 30.0)
    assert config["NOTIFY_RETRY_INTERVALS"] == (10, 30, 60, 300, 900)
    intervals = ("RELAY_INTERVAL_SECONDS", "EXPIRY_INTERVAL_SECONDS", "CART_PURGE_INTERVAL_SECONDS",
                 "GATEWAY_RETRY_INTERVAL_SECONDS")
    assert [config[name] for name in intervals] == [5, 30, 3600, 60]


@pytest.mark.parametrize("environ", [{"PORT": "eighty"}, {"NOTIFY_RETRY_INTERVALS": "10,soon"},
                                     {"NOTIFY_RETRY_INTERVALS": " , "}])
def test_a_malformed_number_is_refused_at_start(environ):
    with pytest.raises(ValueError):
        load_config(environ)


def _setting_lookups_with_a_fallback(tree: ast.AST) -> list[str]:
    """``x.get("SETTING", ...)`` and ``x.get("SETTING") or ...``: a setting's default written
    a second time beside load_config's."""
    found = []
    for node in ast.walk(tree):
        calls = []
        if isinstance(node, ast.Call):
            if len(node.args) > 1 or node.keywords:
                calls.append(node)
        elif isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            calls += [value for value in node.values[:-1] if isinstance(value, ast.Call)]
        for call in calls:
            if (isinstance(call.func, ast.Attribute) and call.func.attr == "get" and call.args
                    and isinstance(call.args[0], ast.Constant) and isinstance(call.args[0].value, str)
                    and VARIABLE.match(call.args[0].value)):
                found.append(f"{call.args[0].value} (line {call.lineno})")
    return found


def test_the_domain_reads_settings_without_defaults_of_its_own():
    # The handler outside Flask gets load_config's reading too, so every key is always there.
    fallbacks = {}
    for path in sorted((PROJECT_ROOT / "ecom").rglob("*.py")):
        found = _setting_lookups_with_a_fallback(ast.parse(path.read_text(encoding="utf-8")))
        if found and path.name != "config.py":
            fallbacks[str(path.relative_to(PROJECT_ROOT))] = found

    assert fallbacks == {}


def test_the_fallback_check_sees_both_spellings():
    source = ('a = settings().get("CURRENCY", "usd")\n'
              'b = settings.get("SHOP_NAME") or "Shop"\n'
              'c = data.get("x", 1)\n')

    assert _setting_lookups_with_a_fallback(ast.parse(source)) == ["CURRENCY (line 1)", "SHOP_NAME (line 2)"]


def _reads_the_environment(tree: ast.AST) -> list[int]:
    """Lines using ``os.environ``/``os.getenv``, or importing either from ``os``."""
    names = {"environ", "getenv"}
    return [node.lineno for node in ast.walk(tree)
            if (isinstance(node, ast.Attribute) and node.attr in names
                and getattr(node.value, "id", None) == "os")
            or (isinstance(node, ast.ImportFrom) and node.module == "os"
                and any(alias.name in names for alias in node.names))]


def test_nothing_but_load_config_reads_the_environment_for_a_setting():
    config_module = PROJECT_ROOT / "ecom" / "config.py"
    readers = {}
    for package in EDGE_AND_DOMAIN_PACKAGES:
        for path in sorted((PROJECT_ROOT / package).rglob("*.py")):
            if path == config_module:
                continue
            lines = _reads_the_environment(ast.parse(path.read_text(encoding="utf-8")))
            if lines:
                readers[str(path.relative_to(PROJECT_ROOT))] = lines

    assert readers == {}


def test_the_app_and_the_standalone_handler_share_one_reading(app):
    from ecom import runtime
    from ecom.notifications.handler import handler_environment

    with app.app_context():
        settings, _ = handler_environment()

    assert settings is runtime.settings(app)
    assert set(load_config({})) <= set(settings)


def test_the_handler_without_flask_reads_load_configs_values(monkeypatch):
    from ecom.notifications.handler import handler_environment, reset_standalone_environment

    # given an environment with a shop name and no app context
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    monkeypatch.setenv("SHOP_NAME", "Tea & Co")
    reset_standalone_environment()
    try:
        # when the handler looks up its settings
        settings, _ = handler_environment()

        # then they are load_config's: every key, with its defaults and the environment's values
        assert settings == load_config()
        assert (settings["SHOP_NAME"], settings["SMTP_TIMEOUT_SECONDS"]) == ("Tea & Co", 30.0)
    finally:
        reset_standalone_environment()


@pytest.mark.parametrize("name", ["prod", "Production", "PRODUCTION", " production", "staging", "dev"])
def test_an_unknown_mode_is_refused_at_start(name):
    # given a mode that is not exactly one the app knows (a misspelt production above all)
    # when the configuration is read, then it is refused rather than run as development
    with pytest.raises(ValueError, match="APP_ENV must be one of"):
        load_config({"APP_ENV": name})


@pytest.mark.parametrize("variable", ["APP_ENV", "FLASK_ENV"])
def test_production_gets_secure_cookies_and_no_development_webhook_secret(variable):
    config = load_config({variable: "production"})

    assert config["ENV_NAME"] == "production"
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["STRIPE_WEBHOOK_SECRET"] is None


def test_development_keeps_its_webhook_secret_and_plain_cookies():
    config = load_config({})

    assert config["ENV_NAME"] == "development"
    assert config["STRIPE_WEBHOOK_SECRET"] == DEVELOPMENT_WEBHOOK_SECRET
    assert not config["SESSION_COOKIE_SECURE"]
    assert config["ALLOW_SIMULATED_GATEWAY"] is False
