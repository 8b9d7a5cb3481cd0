"""Flask CLI commands of this area: worker, relay-outbox, expire-reservations, purge-guest-carts."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app

from ecom.notifications.queues import QUEUE_NAMES


def register(app: Flask) -> None:
    """Add this area's commands to ``app.cli``."""
    app.cli.add_command(worker_command)
    app.cli.add_command(relay_outbox_command)
    app.cli.add_command(expire_reservations_command)
    app.cli.add_command(purge_guest_carts_command)


@click.command("worker")
@click.option("--queue", "queues", multiple=True, help="Queue to listen on (repeatable).",
              default=QUEUE_NAMES, show_default=True)
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--simple", is_flag=True, help="Run jobs in this process instead of a forked work horse.")
def worker_command(queues: tuple[str, ...], burst: bool, simple: bool) -> None:
    """Run an RQ worker (with the scheduler) inside the app context."""
    import redis
    from rq import Queue, SimpleWorker, Worker

    from ecom.extensions import db
    from workers.jobs import schedule_all_periodic

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set; without it events are handled in-process.")
    # The worker's own connection: rq sets long socket timeouts on it for blocking dequeues.
    connection = redis.Redis.from_url(app.config["REDIS_URL"])
    scheduled = schedule_all_periodic(app, connection=connection)
    click.echo(f"periodic jobs scheduled: {', '.join(scheduled) or 'none'}")
    engine = db.engine
    engine.dispose()
    # A forked work horse must never reuse a pooled connection of its parent.
    os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))
    worker_class = SimpleWorker if simple else Worker
    worker = worker_class([Queue(name, connection=connection) for name in queues], connection=connection)
    worker.work(with_scheduler=True, burst=burst, logging_level=app.config.get("LOG_LEVEL", "INFO"))


@click.command("relay-outbox")
@click.option("--batch", default=100, show_default=True)
def relay_outbox_command(batch: int) -> None:
    """Relay undispatched outbox events to RQ (or, without REDIS_URL, handle them here)."""
    app = current_app._get_current_object()
    if app.config.get("REDIS_URL"):
        from workers.jobs import relay_outbox_job

        totals = relay_outbox_job(batch)
        click.echo(f"enqueued {totals['enqueued']}, already queued {totals['already_queued']}, "
                   f"left in the outbox after a Redis error {totals['failed']}")
        if totals["failed"]:
            raise SystemExit(1)
    else:
        from ecom.events import sweep_outbox_inline

        click.echo(f"handled in-process {sweep_outbox_inline(app, batch)}")


@click.command("expire-reservations")
def expire_reservations_command() -> None:
    """Release the stock of reservations past their TTL."""
    from ecom.events import run_reservation_expiry

    expired = run_reservation_expiry()
    click.echo(f"expired {len(expired)} order(s){': ' + ', '.join(expired) if expired else ''}")


@click.command("purge-guest-carts")
def purge_guest_carts_command() -> None:
    """Delete abandoned guest carts (empty after a day, idle after 30 days)."""
    from ecom.events import run_guest_cart_purge

    click.echo(f"purged {run_guest_cart_purge()} guest cart(s)")
