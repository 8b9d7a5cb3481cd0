"""The domain (``ecom/``) never reaches for its edges or the composition root.

Every module under ``ecom/`` is parsed, imports inside functions included; a
job named by its dotted path in a string ("workers.jobs.x") is not an import
and is fine - that is how the domain hands work to the workers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ecom.config import PROJECT_ROOT

EDGES = {"admin", "storefront_api", "workers", "shop"}
DOMAIN_MODULES = sorted((PROJECT_ROOT / "ecom").rglob("*.py"))


def imported_modules(tree: ast.AST) -> list[str]:
    """Absolute module names imported anywhere in ``tree`` (``import x``, ``from x import y``,
    ``importlib.import_module("x")``, ``__import__("x")``)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in {"import_module", "__import__"}


def relative(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT))


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=relative)
def test_no_domain_module_imports_an_edge_or_the_composition_root(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    offending = [name for name in imported_modules(tree) if name.split(".")[0] in EDGES]

    assert offending == [], f"{relative(path)} imports {offending}"


@pytest.mark.parametrize("path", DOMAIN_MODULES, ids=relative)
def test_no_domain_module_builds_an_app(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))

    builds = [node.lineno for node in ast.walk(tree)
              if isinstance(node, ast.Call) and getattr(node.func, "id", None) in {"Flask", "create_app"}]

    assert builds == [], f"{relative(path)} builds an app on line(s) {builds}"


def test_the_check_sees_imports_inside_functions_and_ignores_dotted_job_names():
    source = (
        "import ecom.db\n"
        "def f():\n"
        "    from workers.jobs import deliver_event\n"
        "    import importlib\n"
        "    importlib.import_module('admin.views')\n"
        "    queue.enqueue('workers.jobs.run_import_job', 1)\n"
    )

    assert imported_modules(ast.parse(source)) == ["ecom.db", "workers.jobs", "importlib", "admin.views"]


def test_the_app_is_built_by_the_composition_root():
    from shop.app import create_app

    assert create_app.__module__ == "shop.app"
    assert not (PROJECT_ROOT / "ecom" / "app.py").exists()
