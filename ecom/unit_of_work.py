"""One owner of commits: the edge (a request, an admin action, a CLI command, a job) commits once.

Services only flush. Work that must happen after the commit and outside every
row lock (a call to the payment gateway) is registered with ``after_commit``
by the service that decided it, and run by ``commit()`` once the transaction
is durable, each task in a transaction of its own. What such a task is about
to do is recorded before the commit, so a crash between the commit and the
task loses nothing: the recorded state drives the retry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from sqlalchemy.orm import Session

from ecom.db import listen_on_sessions
from ecom.extensions import db

log = logging.getLogger(__name__)

T = TypeVar("T")
AFTER_COMMIT = "ecom_after_commit_tasks"
AFTER_ROLLBACK = "ecom_after_rollback_tasks"


def after_commit(task: Callable[[], object]) -> None:
    """Run ``task`` after the current transaction commits (never if it rolls back).

    ``task`` runs in a transaction of its own, committed after it; it must be
    safe to run again (a retry job may run it too) and should not raise for a
    failure it recorded.
    """
    db.session.info.setdefault(AFTER_COMMIT, []).append(task)


def after_rollback(task: Callable[[], object]) -> None:
    """Run ``task`` once the current transaction has been rolled back (never if it commits):
    for a service raising an error its caller will roll back, work that must wait until the
    transaction's row locks are let go (cancelling a payment intent nobody will pay).

    ``task`` runs outside any transaction and must not use the database; a failure is
    logged, not raised (the rollback already happened).
    """
    db.session.info.setdefault(AFTER_ROLLBACK, []).append(task)


def commit() -> None:
    """Commit the session, then run the tasks registered with ``after_commit``."""
    db.session.commit()
    run_after_commit_tasks()


def rollback() -> None:
    """Roll back the session and drop its after-commit tasks."""
    db.session.rollback()
    db.session.info.pop(AFTER_COMMIT, None)


@contextmanager
def unit_of_work() -> Iterator[None]:
    """Commit the block's changes once at its end; roll back and re-raise on any exception."""
    try:
        yield
    except BaseException:
        rollback()
        raise
    try:
        db.session.commit()
    except BaseException:
        rollback()
        raise
    run_after_commit_tasks()


def committed(work: Callable[[], T]) -> T:
    """``work()``'s result, its changes committed (rolled back and re-raised if it fails)."""
    with unit_of_work():
        result = work()
    return result


def run_after_commit_tasks() -> None:
    """Run the tasks the committed transaction registered, each in its own transaction."""
    while tasks := db.session.info.pop(AFTER_COMMIT, None):
        for task in tasks:
            try:
                with unit_of_work():
                    task()
            except Exception:  # recorded work is retried from its recorded state
                log.exception("after-commit task %r failed; its recorded state drives the retry", task)


def _on_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return
    session.info.pop(AFTER_COMMIT, None)
    for task in session.info.pop(AFTER_ROLLBACK, ()):
        try:
            task()
        except Exception:
            log.exception("after-rollback task %r failed", task)


def _on_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(AFTER_ROLLBACK, None)


def init_app(app) -> None:
    """A rollback anywhere (an error handler, a test) forgets the rolled-back work's
    after-commit tasks and runs its after-rollback ones; a commit forgets the latter."""
    listen_on_sessions(after_rollback=_on_rollback, after_commit=_on_commit)
