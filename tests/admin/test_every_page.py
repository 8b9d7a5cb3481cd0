"""Every screen opens, for every role that may use it, on the demo shop."""

from __future__ import annotations

import pytest

from ecom.demo import seed_demo
from tests.admin.test_access import READERS

pytestmark = pytest.mark.slow

MODEL_VIEWS = [e for e in READERS if e not in ("jobs", "pricecheck")]


@pytest.fixture
def demo(db):
    seed_demo()
    db.session.commit()


@pytest.mark.parametrize("role", ["admin", "merchandiser", "warehouse"])
def test_every_list_details_and_form_page_opens(app, as_role, db, demo, role):
    client = as_role(role)
    views = {getattr(v, "endpoint", None): v for v in app.extensions["backoffice"]._views}
    assert client.get("/admin/").status_code == 200
    for endpoint in MODEL_VIEWS:
        if role not in READERS[endpoint]:
            continue
        listing = client.get(f"/admin/{endpoint}/")
        assert listing.status_code == 200, endpoint
        view = views[endpoint]
        first = view.get_query().first()  # the view's own rows (customers among the users)
        if first is None:
            continue
        assert client.get(f"/admin/{endpoint}/details/?id={first.id}").status_code == 200, endpoint
        edit = client.get(f"/admin/{endpoint}/edit/?id={first.id}")
        assert edit.status_code in (200, 403), endpoint
    assert client.get("/admin/fulfillment/picklist").status_code == 200
    if role == "admin":
        assert client.get("/admin/jobs/").status_code == 200
    if role in READERS["pricecheck"]:
        assert client.get("/admin/pricecheck/").status_code == 200
