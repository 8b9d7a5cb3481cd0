"""The category tree: a category never ends up under itself, not even by two concurrent moves."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from ecom.catalog import services
from ecom.catalog.models import Category
from ecom.errors import ValidationFailed


@pytest.fixture
def tree(db):
    """outdoor > footwear > boots, and kitchen."""
    outdoor = services.create_category(name="Outdoor")
    footwear = services.create_category(name="Footwear", parent=outdoor)
    boots = services.create_category(name="Boots", parent=footwear)
    kitchen = services.create_category(name="Kitchen")
    return {"outdoor": outdoor, "footwear": footwear, "boots": boots, "kitchen": kitchen}


@pytest.mark.parametrize(("moved", "under"), [
    ("outdoor", "outdoor"),    # itself
    ("outdoor", "footwear"),   # its child
    ("outdoor", "boots"),      # its grandchild
    ("footwear", "boots"),
])
def test_a_category_cannot_go_under_itself_or_its_descendants(db, tree, moved, under):
    with pytest.raises(ValidationFailed) as refused:
        services.update_category(tree[moved], parent=tree[under])

    assert "under itself or under one of its own subcategories" in refused.value.message
    assert "parent" in refused.value.errors


def test_the_same_check_holds_when_only_parent_id_is_set(db, tree):
    tree["outdoor"].parent_id = tree["boots"].id
    with pytest.raises(ValidationFailed):
        services.prepare_category(tree["outdoor"])


def test_moves_elsewhere_in_the_tree_are_fine(db, tree):
    services.update_category(tree["boots"], parent=tree["outdoor"])
    services.update_category(tree["kitchen"], parent=tree["boots"])
    services.update_category(tree["footwear"], parent=None)

    assert tree["kitchen"].parent is tree["boots"] and tree["boots"].parent is tree["outdoor"]
    assert services.category_paths()[tree["kitchen"].id] == ["Outdoor", "Boots", "Kitchen"]


def test_a_new_category_may_go_anywhere(db, tree):
    made = services.create_category(name="Laces", parent=tree["boots"])

    assert services.category_paths()[made.id] == ["Outdoor", "Footwear", "Boots", "Laces"]


def test_two_concurrent_moves_cannot_close_a_loop(app, committed_db, postgres):
    # given two root categories, moved under each other at the same moment by two staff members
    a = services.create_category(name="Alpha")
    b = services.create_category(name="Beta")
    committed_db.session.commit()
    ids = {"a": a.id, "b": b.id}
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def move(child: str, parent: str) -> None:
        with app.app_context():
            session = committed_db.session
            moved, target = session.get(Category, ids[child]), session.get(Category, ids[parent])
            barrier.wait()
            try:
                services.update_category(moved, parent=target)
                session.commit()
                outcomes[child] = "moved"
            except Exception as exc:  # noqa: BLE001 - the refusal or the deadlock, reported below
                session.rollback()
                outcomes[child] = type(exc).__name__
            finally:
                session.remove()

    threads = [threading.Thread(target=move, args=("a", "b")), threading.Thread(target=move, args=("b", "a"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then one move won, and the other waited for it, saw it and was refused: never both
    assert sorted(outcomes.values()) == ["ValidationFailed", "moved"], outcomes
    committed_db.session.expire_all()
    parents = dict(committed_db.session.execute(
        select(Category.id, Category.parent_id).where(Category.id.in_(ids.values()))).all())
    assert parents[ids["a"]] is None or parents[ids["b"]] is None


def test_the_database_refuses_a_category_that_is_its_own_parent(db, tree):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), db.session.begin_nested():
        db.session.execute(text("UPDATE categories SET parent_id = id WHERE id = :id"),
                           {"id": tree["boots"].id})
