"""ecom.unit_of_work's after-rollback tasks: run once the transaction is rolled back, never
after a commit, a failing one logged rather than raised."""

from __future__ import annotations

import logging

from ecom.unit_of_work import after_rollback, commit, rollback
from tests.factories import UserFactory


def test_an_after_rollback_task_runs_once_the_transaction_is_rolled_back(db):
    ran = []
    UserFactory()
    after_rollback(lambda: ran.append("cancelled"))
    assert ran == []  # not while the transaction (and its locks) is still there
    rollback()
    assert ran == ["cancelled"]
    rollback()  # a later rollback does not run it again
    assert ran == ["cancelled"]


def test_a_commit_forgets_the_after_rollback_tasks(db):
    ran = []
    UserFactory()
    after_rollback(lambda: ran.append("cancelled"))
    commit()
    UserFactory()  # the next transaction, rolled back
    rollback()
    assert ran == []


def test_a_failing_after_rollback_task_is_logged_and_the_next_still_runs(db, caplog):
    ran = []

    def fails():
        raise RuntimeError("gateway away")

    UserFactory()
    after_rollback(fails)
    after_rollback(lambda: ran.append("second"))
    with caplog.at_level(logging.ERROR, logger="ecom.unit_of_work"):
        rollback()
    assert ran == ["second"]
    assert "after-rollback task" in caplog.text
