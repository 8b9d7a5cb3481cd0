"""Flask CLI commands of this area: worker, relay-outbox, expire-reservations, purge-guest-carts."""

from __future__ import annotations

import click
from flask import Flask, current_app

from ecom import runtime
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
@click.option("--fork", is_flag=True,
              help="Fork a work horse per job (rq's default Worker) instead of running jobs in this process.")
def worker_command(queues: tuple[str, ...], burst: bool, fork: bool) -> None:
    """Run an RQ worker (with the scheduler); see workers/worker.py."""
    from workers.jobs import schedule_all_periodic
    from workers.worker import make_worker, run_worker, worker_connection

    app = current_app._get_current_object()
    if not runtime.settings(app).get("REDIS_URL"):
        raise click.ClickException("REDIS_URL is not set; without it events are handled in-process.")
    connection = worker_connection(app)
    scheduled = schedule_all_periodic(app, connection=connection)
    click.echo(f"periodic jobs scheduled: {', '.join(scheduled) or 'none'}")
    run_worker(make_worker(app, queues, connection=connection, fork=fork), app, burst=burst)


@click.command("relay-outbox")
@click.option("--batch", default=100, show_default=True)
def relay_outbox_command(batch: int) -> None:
    """Relay undispatched outbox events to RQ (or, without REDIS_URL, handle them here)."""
    app = current_app._get_current_object()
    if runtime.settings(app).get("REDIS_URL"):
        from workers.jobs import relay_outbox_job

        totals = relay_outbox_job(batch)
        click.echo(f"enqueued {totals['enqueued']}, already queued {totals['already_queued']}, "
                   f"left in the outbox after a Redis error {totals['failed']}")
        if totals["failed"]:
            raise SystemExit(1)
    else:
        from ecom.notifications.outbox import sweep_outbox_inline

        click.echo(f"handled in-process {sweep_outbox_inline(app, batch)}")


@click.command("expire-reservations")
def expire_reservations_command() -> None:
    """Release the stock of reservations past their TTL."""
    from workers.periodic import expire_reservations

    expired = expire_reservations()
    click.echo(f"expired {len(expired)} order(s){': ' + ', '.join(expired) if expired else ''}")


@click.command("purge-guest-carts")
def purge_guest_carts_command() -> None:
    """Delete abandoned guest carts (empty after a day, idle after 30 days)."""
    from workers.periodic import purge_guest_carts

    click.echo(f"purged {purge_guest_carts()} guest cart(s)")
