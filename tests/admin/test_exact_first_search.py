"""The orders and fulfillment searches: a term typed whole is found over a B-tree first, and
searched inside the columns (ILIKE '%term%', the trigram indexes) only when nothing matched.

Each search below lists the same rows as the search inside the columns alone (the fast path
switched off), on SQLite and PostgreSQL; on PostgreSQL the exact lookups use their B-trees.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from admin.base import ExactFirstSearch
from tests.factories import UserFactory, make_order


def _view(app, endpoint: str):
    return next(v for v in app.extensions["backoffice"]._views if getattr(v, "endpoint", None) == endpoint)


def _numbers(client, endpoint: str, search: str, **params) -> list[str]:
    response = client.get(f"/admin/{endpoint}/", query_string={"search": search, **params})
    assert response.status_code == 200
    # The order number column of the rows listed (not the search box, which shows the term).
    cells = re.findall(r'<td class="col-order_number">(.*?)</td>', response.get_data(as_text=True), re.S)
    return sorted({number for cell in cells for number in re.findall(r"ORD-[A-Z]-\d{6}", cell)})


def _searched_inside_only(monkeypatch):
    """Switch the fast path off: every term is searched inside the columns, as before it."""
    monkeypatch.setattr(ExactFirstSearch, "_exact_condition", lambda self, term: None)


@pytest.fixture
def orders(db):
    """Five orders; one of an old import whose email was kept in capitals."""
    pat = UserFactory(email="pat.jones@example.test")
    make_order(pat, number="ORD-B-000712")
    make_order(pat, number="ORD-B-000713", status="paid")
    make_order(UserFactory(email="sam@example.test"), number="ORD-C-000001")
    make_order(UserFactory(email="ann@example.test"), number="ORD-C-000002")
    legacy = make_order(UserFactory(email="pat.legacy@example.test"), number="ORD-D-000003")
    legacy.email = "Pat.Jones@Example.TEST"
    db.session.commit()


PAT = ["ORD-B-000712", "ORD-B-000713", "ORD-D-000003"]
ORDER_SEARCHES = [
    ("pat.jones@example.test", PAT),
    ("PAT.Jones@EXAMPLE.test", PAT),  # another case
    ("  pat.jones@example.test ", PAT),  # pasted with spaces around
    ("jones@exa", PAT),  # part of an email: through the search inside
    ("ORD-B-000712", ["ORD-B-000712"]),  # a number whole
    ("ord-b-000712", ["ORD-B-000712"]),
    ("ORD-B-0007", ["ORD-B-000712", "ORD-B-000713"]),  # how numbers start
    ("B-00071", ["ORD-B-000712", "ORD-B-000713"]),  # ... without the ORD-
    ("000002", ["ORD-C-000002"]),  # the end of a number: through the search inside
    ("nobody@example.test", []),
    ("ORD-Z-999999", []),
    ("pat jones", PAT),  # two words: searched inside, each word somewhere
]


@pytest.mark.parametrize(("search", "expected"), ORDER_SEARCHES, ids=[s for s, _ in ORDER_SEARCHES])
def test_the_order_search_lists_the_rows_the_search_inside_lists(as_role, orders, monkeypatch, search,
                                                                 expected):
    client = as_role("merchandiser")
    found = _numbers(client, "order", search)
    assert found == expected
    _searched_inside_only(monkeypatch)
    assert _numbers(client, "order", search) == found


def test_an_email_typed_whole_hides_the_longer_ones_that_hold_it(as_role, orders, db):
    # The one behaviour that differs from the search inside: "ann@" is inside "joann@".
    make_order(UserFactory(email="joann@example.test"), number="ORD-E-000004")
    db.session.commit()
    client = as_role("merchandiser")
    assert _numbers(client, "order", "ann@example.test") == ["ORD-C-000002"]
    assert _numbers(client, "order", "ann@example") == ["ORD-C-000002", "ORD-E-000004"]


def test_a_search_typed_whole_keeps_the_filters(app, as_role, orders):
    view = _view(app, "order")
    status = next(i for i, f in enumerate(view._filters)
                  if str(f.column).endswith(".status") and f.operation() == "equals")
    arg = f"flt0_{view.get_filter_arg(status, view._filters[status])}"
    client = as_role("merchandiser")
    # Only the exact matches are filtered: not every order that holds a part of the email.
    assert _numbers(client, "order", "pat.jones@example.test", **{arg: "paid"}) == ["ORD-B-000713"]


@pytest.fixture
def fulfillments(db, orders):
    from ecom.commerce.models import Order
    from ecom.fulfillment.models import Fulfillment
    from ecom.inventory.services import default_location

    location = default_location()
    tracking = {"ORD-B-000712": "1Z999AA10123456784", "ORD-C-000001": "1Z999AA10123456785"}
    for order in db.session.query(Order).order_by(Order.id):
        number = tracking.get(order.order_number)
        db.session.add(Fulfillment(order_id=order.id, order_number=order.order_number,
                                   location_id=location.id, status="shipped" if number else "pending",
                                   carrier="UPS" if number else None, tracking_number=number))
    db.session.commit()


FULFILLMENT_SEARCHES = [
    ("ORD-B-000712", ["ORD-B-000712"]),
    ("b-0007", ["ORD-B-000712", "ORD-B-000713"]),
    ("1Z999AA10123456784", ["ORD-B-000712"]),  # a tracking number whole
    ("1z999aa10123456784", ["ORD-B-000712"]),  # ... typed in small letters
    ("1Z999AA1012345678", ["ORD-B-000712", "ORD-C-000001"]),  # part of one: through the search inside
    ("000003", ["ORD-D-000003"]),
    ("ORD-Z-999999", []),
]


@pytest.mark.parametrize(("search", "expected"), FULFILLMENT_SEARCHES,
                         ids=[s for s, _ in FULFILLMENT_SEARCHES])
def test_the_fulfillment_search_lists_the_rows_the_search_inside_lists(as_role, fulfillments, monkeypatch,
                                                                       search, expected):
    client = as_role("warehouse")
    found = _numbers(client, "fulfillment", search)
    assert found == expected
    _searched_inside_only(monkeypatch)
    assert _numbers(client, "fulfillment", search) == found


# -- PostgreSQL: what the exact lookups and the searches after them read


def _plan(db, statement, **settings: str) -> str:
    compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"render_postcompile": True})
    for name, value in {"enable_seqscan": "off", **settings}.items():
        db.session.execute(text(f"SET LOCAL {name} = {value}"))
    rows = db.session.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    return "\n".join(row[0] for row in rows)


@pytest.mark.parametrize(("endpoint", "term", "indexes"), [
    # A term that may be a number (or its start) or an email: both ways at once.
    ("order", "ORD-B-000712", ["ix_orders_email_lower", "uq_orders_order_number"]),
    ("fulfillment", "ORD-B-000712", ["ix_fulfillments_tracking_number", "ix_fulfillments_order_number"]),
])
def test_the_exact_lookup_reads_b_trees(postgres, db, endpoint, term, indexes):
    from sqlalchemy import select

    view = _view(postgres, endpoint)
    condition = view._exact_condition(term)
    plan = _plan(db, select(view.model.id).where(condition).limit(1))
    for index in indexes:
        assert index in plan, plan
    assert "trgm" not in plan, plan


def test_a_search_typed_whole_reads_no_trigram_index(postgres, db, orders, as_role):
    view = _view(postgres, "order")
    with postgres.test_request_context():
        _, query = view.get_list(None, None, False, "pat.jones@example.test", [], execute=False)
        plan = _plan(db, query.statement, enable_indexscan="off")
        _, inside = view.get_list(None, None, False, "jones@exa", [], execute=False)
        plan_inside = _plan(db, inside.statement, enable_indexscan="off")
    assert "trgm" not in plan and "ix_orders_email_lower" in plan, plan
    assert "ix_orders_email_trgm" in plan_inside, plan_inside
