"""Product image services: files of a rolled-back upload go again; thumbnails are made by the
worker job (queued with Redis, idempotent) or by the make-thumbnails command."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ecom.actor import SYSTEM
from ecom.catalog.images import Upload, add_images, images_without_thumbnails, make_thumbnails
from ecom.catalog.models import ProductImage
from ecom.unit_of_work import unit_of_work
from tests.factories import ProductFactory
from tests.media_support import image_bytes


def _files(root):
    return sorted(p.name for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_the_files_of_an_upload_rolled_back_later_are_deleted(db, media_root):
    product = ProductFactory()
    db.session.commit()

    with pytest.raises(RuntimeError), unit_of_work():
        add_images(product, [Upload("a.png", image_bytes("PNG"))], actor=SYSTEM)
        assert len(_files(media_root)) == 1  # written before the commit...
        raise RuntimeError("a later step failed")

    assert _files(media_root) == []  # ...and gone with the rollback
    assert db.session.scalars(select(ProductImage)).all() == []


def test_thumbnails_are_made_once(db, media_root):
    product = ProductFactory()
    [image] = add_images(product, [Upload("a.jpg", image_bytes("JPEG", size=(1600, 400)))], actor=SYSTEM)
    assert images_without_thumbnails() == [image.id]

    first = make_thumbnails(image.id)
    again = make_thumbnails(image.id)

    assert first == again and set(first) == {"200", "800"}
    assert images_without_thumbnails() == []
    assert len(_files(media_root)) == 3


def test_with_redis_the_upload_queues_the_thumbnail_job_for_the_worker(app, db, media_root, redis_url,
                                                                        monkeypatch):
    from redis import Redis
    from rq import Queue, SimpleWorker

    from workers.media import start_thumbnails

    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    product = ProductFactory()
    [image] = add_images(product, [Upload("a.png", image_bytes("PNG"))], actor=SYSTEM)
    db.session.commit()

    assert start_thumbnails([image.id], app) == "queued"
    assert image.thumbnails == {}  # nothing made in the request

    connection = Redis.from_url(redis_url)
    SimpleWorker([Queue("default", connection=connection)], connection=connection).work(burst=True)

    db.session.expire_all()
    assert set(db.session.get(ProductImage, image.id).thumbnails) == {"200", "800"}


def test_the_make_thumbnails_command_catches_up(app, db, media_root):
    product = ProductFactory()
    add_images(product, [Upload("a.png", image_bytes("PNG")), Upload("b.png", image_bytes("PNG"))],
               actor=SYSTEM)
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["make-thumbnails"])

    assert result.exit_code == 0 and "2 image(s) thumbnailed." in result.output
    assert images_without_thumbnails() == []
