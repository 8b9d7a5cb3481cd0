"""Flask CLI commands of this area: the worker, each periodic job run once (relay-outbox,
expire-reservations, purge-guest-carts, retry-gateway-calls) and import-products."""

from __future__ import annotations

import os

import click
from flask import Flask, current_app

from ecom import runtime
from ecom.actor import SYSTEM
from ecom.errors import EcomError
from ecom.notifications.queues import QUEUE_NAMES
from ecom.unit_of_work import committed


def register(app: Flask) -> None:
    """Add this area's commands to ``app.cli``."""
    app.cli.add_command(worker_command)
    app.cli.add_command(relay_outbox_command)
    app.cli.add_command(expire_reservations_command)
    app.cli.add_command(purge_guest_carts_command)
    app.cli.add_command(retry_gateway_calls_command)
    app.cli.add_command(import_products_command)
    app.cli.add_command(make_thumbnails_command)


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
    if not runtime.settings(app)["REDIS_URL"]:
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
    if runtime.settings(app)["REDIS_URL"]:
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


@click.command("retry-gateway-calls")
def retry_gateway_calls_command() -> None:
    """Make the recorded refunds and intent cancellations not done yet, once (the periodic
    gateway-retries job does the same every GATEWAY_RETRY_INTERVAL_SECONDS)."""
    from workers.periodic import retry_gateway_calls

    counts = retry_gateway_calls().as_dict()
    click.echo(", ".join(f"{name.replace('_', ' ')} {value}" for name, value in counts.items()))


@click.command("import-products")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def import_products_command(path: str) -> None:
    """Import products from a CSV file in the back office's export format."""
    from ecom.catalog import csv_io
    from workers.imports import run_import

    with open(path, encoding="utf-8-sig") as handle:
        content = handle.read()
    try:
        job = committed(lambda: csv_io.create_import_job(content, filename=os.path.basename(path),
                                                         user_id=None))
    except EcomError as exc:
        raise click.ClickException(str(exc)) from exc
    run_import(job, actor=SYSTEM)
    click.echo(f"{job.processed_rows} rows: {job.created_count} created, {job.updated_count} updated, "
               f"{len(job.errors)} with errors.")
    for error in job.errors:
        click.echo(f"  line {error['line']}: {'; '.join(error['errors'])}", err=True)
    if job.status == "failed" or job.errors:
        raise SystemExit(1)


@click.command("make-thumbnails")
@click.option("--limit", default=500, show_default=True, help="At most this many images per run.")
def make_thumbnails_command(limit: int) -> None:
    """Make the missing WebP thumbnails of uploaded product images (after a lost worker job)."""
    from ecom.catalog.images import images_without_thumbnails
    from workers.media import run_thumbnails

    ids = images_without_thumbnails(limit)
    for image_id in ids:
        run_thumbnails(image_id)
    click.echo(f"{len(ids)} image(s) thumbnailed.")
