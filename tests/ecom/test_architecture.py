"""The domain (``ecom/``) never reaches for its edges or the composition root, and its
packages depend on each other only as documented here.

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

# Modules every package may use; they import no package of the domain themselves (runtime gets
# the gateway choice handed in by shop/app.py rather than importing commerce; cache_versions is
# told its tables by the catalog and pricing).
FOUNDATION = {"actor", "cache_versions", "config", "connections", "db", "errors", "extensions",
              "row_writes", "runtime", "unit_of_work"}

# package -> the packages it may import (besides FOUNDATION).
ALLOWED = {
    "audit": set(),
    "stores": set(),
    # invitations: the set-password link is emailed through the outbox.
    "identity": {"audit", "notifications"},
    # Stock changes emit LOW_STOCK through the outbox.
    "inventory": {"audit", "notifications"},
    # The handler finds staff recipients (identity) and, run without the app, registers every
    # mapper (ecom.models) so relationships resolve.
    "notifications": {"identity", "models"},
    # reviews: a verified purchase is a delivered order line (commerce); csv_io names the
    # importing user as the actor (identity).
    # images: uploads are stored and checked through media.
    "catalog": {"audit", "commerce", "identity", "inventory", "media"},
    # Storage backends and image checks: foundation only.
    "media": set(),
    "commerce": {"audit", "catalog", "fulfillment", "identity", "inventory", "notifications", "pricing"},
    # Tax, shipping and promotion rules and the one pricing function: reads only its own tables
    # (a pickup method names a store by a foreign key, not an import); edits are audited.
    "pricing": {"audit"},
    # A fulfillment step moves its order (commerce's transition and history); an order's
    # fulfillments follow where its stock was reserved (inventory).
    "fulfillment": {"audit", "commerce", "inventory", "notifications"},
    # Transfers and purchase orders move stock (inventory) through the one status change
    # (commerce.orders.check_transition); lines name variants by SKU (catalog).
    "stockroom": {"audit", "catalog", "commerce", "inventory"},
    # The registry of every table, for create_app, Alembic and the standalone handler.
    "models": {"audit", "catalog", "commerce", "fulfillment", "identity", "inventory", "notifications",
               "pricing", "stockroom", "stores"},
    # The demo shop composes the packages; nothing in the domain imports it.
    "demo": {"catalog", "commerce", "identity", "inventory", "pricing", "stockroom", "stores"},
}

# The cycles the domain keeps, each as (importer, imported, the modules allowed to import that
# way): without these back edges the packages form layers (test below).
DOCUMENTED_CYCLES = {
    # commerce <-> fulfillment: paying creates the fulfillment and cancelling cancels it, and a
    # fulfillment step (packed, shipped, delivered) moves the order through commerce's transitions.
    ("fulfillment", "commerce"): {"ecom/fulfillment/services.py", "ecom/fulfillment/status.py"},
    # catalog <-> commerce: carts and orders read products, and a review's verified purchase
    # reads the reviewer's delivered orders; a product that was ordered is not deleted (deletion).
    ("catalog", "commerce"): {"ecom/catalog/reviews.py", "ecom/catalog/deletion.py"},
    # ecom.models <-> notifications: the registry imports every package's models, and the
    # handler, which runs without a Flask app, imports the registry so every mapper is known.
    ("notifications", "models"): {"ecom/notifications/handler.py"},
    # identity -> notifications: staff invitations and password resets emit their email events;
    # the handler reads staff recipients from identity.
    ("identity", "notifications"): {"ecom/identity/invitations.py"},
}


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


def unit_of(module: str) -> str | None:
    """The package (or top-level module) of ``ecom`` a dotted name belongs to."""
    parts = module.split(".")
    return parts[1] if parts[0] == "ecom" and len(parts) > 1 else None


def domain_imports() -> dict[tuple[str, str], set[str]]:
    """(importer, imported) -> the modules under ecom/ making that import, between different units."""
    edges: dict[tuple[str, str], set[str]] = {}
    for path in DOMAIN_MODULES:
        parts = path.relative_to(PROJECT_ROOT / "ecom").with_suffix("").parts
        source = parts[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        names = imported_modules(tree)
        # ``from ecom import runtime`` names the module in the alias, not in ``module``.
        names += [f"ecom.{alias.name}" for node in ast.walk(tree)
                  if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "ecom"
                  for alias in node.names]
        for target in filter(None, map(unit_of, names)):
            if target != source:
                edges.setdefault((source, target), set()).add(relative(path))
    return edges


def test_foundation_modules_import_no_package_of_the_domain():
    reaching = {edge: modules for edge, modules in domain_imports().items()
                if edge[0] in FOUNDATION and edge[1] not in FOUNDATION}

    assert reaching == {}


def test_packages_import_only_the_documented_dependencies():
    unexpected = {
        edge: sorted(modules) for edge, modules in domain_imports().items()
        if edge[0] not in FOUNDATION and edge[1] not in FOUNDATION
        and edge[1] not in ALLOWED.get(edge[0], set())
    }

    assert unexpected == {}, "document the dependency (and its reason) in ALLOWED, or remove it"


def test_the_cycles_go_only_through_their_documented_modules():
    edges = domain_imports()

    stray = {edge: sorted(edges[edge] - modules) for edge, modules in DOCUMENTED_CYCLES.items()
             if edges.get(edge, set()) - modules}

    assert stray == {}


def test_without_the_documented_back_edges_the_packages_form_layers():
    graph = {package: set(targets) for package, targets in ALLOWED.items()}
    for importer, imported in DOCUMENTED_CYCLES:
        graph[importer].discard(imported)

    assert find_cycle(graph) is None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None when it has none."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = "done"
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_layers():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
