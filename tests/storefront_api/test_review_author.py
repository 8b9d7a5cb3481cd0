"""Issue 18, point 15: a review never shows anything of its author's email address."""

from __future__ import annotations

import pytest

from ecom.catalog.models import Review
from ecom.catalog.reviews import author_name
from ecom.identity.models import User
from tests.factories import UserFactory, stocked_variant
from tests.storefront_api.conftest import bearer


@pytest.mark.parametrize("full_name", ["", "   "])
def test_a_review_by_a_nameless_author_does_not_show_the_email(client, db, full_name):
    # given a shopper with no name and a private-looking address
    product = stocked_variant().product
    user = UserFactory(full_name=full_name, email="jane.private.doe@example.com")
    db.session.commit()
    # when they review a product, and anyone reads the reviews
    posted = client.post(f"/api/v1/products/{product.slug}/reviews", headers=bearer(user),
                         json={"rating": 4, "title": "Fine", "comment": "Does the job"})
    listed = client.get(f"/api/v1/products/{product.slug}/reviews")
    # then the author is "Anonymous", and no part of the email appears
    assert posted.status_code == 201, posted.json
    assert posted.json["author_name"] == "Anonymous"
    assert listed.json["items"][0]["author_name"] == "Anonymous"
    assert "jane" not in listed.get_data(as_text=True)


@pytest.mark.parametrize(("full_name", "verified", "shown"), [
    ("Ada Lovelace", True, "Ada Lovelace"),
    ("", True, "Verified buyer"),
    ("", False, "Anonymous"),
])
def test_author_name(full_name, verified, shown):
    author = User(email="ada@example.com", full_name=full_name)
    review = Review(rating=5, verified_purchase=verified, user=author)

    assert author_name(review) == shown
