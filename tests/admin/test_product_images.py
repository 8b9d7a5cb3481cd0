"""Product images: uploaded on the product page, checked by content, stored through the
storage interface, thumbnailed by the worker job, served and linked absolutely by the API."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from ecom.audit.models import AuditLog
from ecom.catalog.models import ProductImage
from tests.factories import ProductFactory, VariantFactory
from tests.media_support import image_bytes


def _upload(client, product, files):
    return client.post(f"/admin/product/{product.id}/images/upload", content_type="multipart/form-data",
                       data={"images": [(io.BytesIO(data), name) for name, data in files]},
                       follow_redirects=True)


def _stored_files(root):
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_three_uploads_are_stored_thumbnailed_and_the_first_is_primary(as_role, db, media_root):
    product = ProductFactory(name="Lamp")
    db.session.commit()

    response = _upload(as_role("merchandiser"), product, [
        (f"lamp-{n}.jpg", image_bytes("JPEG", colour=(n * 60, 10, 10))) for n in (1, 2, 3)])

    assert "3 image(s) uploaded." in response.get_data(as_text=True)
    images = db.session.scalars(select(ProductImage).where(ProductImage.product_id == product.id)
                                .order_by(ProductImage.display_order)).all()
    assert [i.is_primary for i in images] == [True, False, False]
    assert [i.content_type for i in images] == ["image/jpeg"] * 3
    for image in images:
        assert (media_root / image.storage_key).is_file()
        for size in ("200", "800"):
            from PIL import Image

            with Image.open(media_root / image.thumbnails[size]) as thumb:
                assert thumb.format == "WEBP" and max(thumb.size) == int(size)
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "upload_images")).label == "Lamp"


def test_reorder_primary_and_alt_text_are_saved(as_role, db, media_root):
    product = ProductFactory()
    db.session.commit()
    client = as_role("merchandiser")
    _upload(client, product, [(f"p{n}.png", image_bytes("PNG")) for n in (1, 2, 3)])
    first, second, third = db.session.scalars(select(ProductImage).where(
        ProductImage.product_id == product.id).order_by(ProductImage.display_order)).all()

    client.post(f"/admin/product/{product.id}/images", data={
        "primary": str(second.id), f"order_{first.id}": "3", f"order_{second.id}": "1",
        f"order_{third.id}": "2", f"alt_{second.id}": "Lamp, lit"}, follow_redirects=True)

    db.session.expire_all()
    ordered = db.session.scalars(select(ProductImage).where(ProductImage.product_id == product.id)
                                 .order_by(ProductImage.display_order)).all()
    assert [i.id for i in ordered] == [second.id, third.id, first.id]
    assert [i.is_primary for i in ordered] == [True, False, False]
    assert ordered[0].alt_text == "Lamp, lit"


def test_a_removed_image_takes_its_files_with_it(as_role, db, media_root):
    product = ProductFactory()
    db.session.commit()
    client = as_role("merchandiser")
    _upload(client, product, [("a.png", image_bytes("PNG")), ("b.png", image_bytes("PNG"))])
    first = db.session.scalar(select(ProductImage).where(ProductImage.product_id == product.id,
                                                         ProductImage.is_primary.is_(True)))

    client.post(f"/admin/product/{product.id}/images", data={"delete": str(first.id)}, follow_redirects=True)

    remaining = db.session.scalars(select(ProductImage).where(ProductImage.product_id == product.id)).all()
    assert len(remaining) == 1 and remaining[0].is_primary
    assert not any(first.storage_key.rsplit(".", 1)[0] in name for name in _stored_files(media_root))


SVG_WITH_SCRIPT = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
                   b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>')


def _truncated_jpeg() -> bytes:
    data = image_bytes("JPEG", size=(800, 600))
    return data[: len(data) // 2]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("logo.svg", SVG_WITH_SCRIPT, "SVG and other text formats can carry script"),
    ("logo.jpg", SVG_WITH_SCRIPT, "SVG and other text formats can carry script"),
    ("photo.jpg", image_bytes("PNG"), "is a PNG image but its name ends in .jpg"),
    ("huge.jpg", b"\xff\xd8\xff" + b"\0" * (20 * 1024 * 1024), "the limit is 10 MB"),
    ("cut.jpg", _truncated_jpeg(), "damaged or incomplete"),
    ("../../etc/evil.png", image_bytes("PNG"), "not a plain file name"),
    ("..\\evil.png", image_bytes("PNG"), "not a plain file name"),
    ("notes.png", b"just some text, not an image", "not an image we can read"),
], ids=["svg-script", "svg-named-jpg", "png-named-jpg", "20mb", "truncated-jpeg", "dotdot-path",
        "dotdot-backslash", "text"])
def test_a_refused_upload_says_why_and_stores_nothing(as_role, db, media_root, name, data, message):
    product = ProductFactory()
    db.session.commit()

    response = _upload(as_role("merchandiser"), product, [("fine.png", image_bytes("PNG")), (name, data)])

    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Nothing was uploaded." in body and body.count(message) == 1  # one message, said once
    assert db.session.scalars(select(ProductImage).where(ProductImage.product_id == product.id)).all() == []
    assert _stored_files(media_root) == []


def test_a_refused_upload_on_the_create_form_saves_no_product(as_role, db, media_root):
    response = as_role("merchandiser").post("/admin/product/new/", content_type="multipart/form-data", data={
        "name": "Refused", "base_price": "5.00",
        "upload_images": [(io.BytesIO(SVG_WITH_SCRIPT), "x.svg")]}, follow_redirects=True)

    assert "carry script" in response.get_data(as_text=True)
    assert _stored_files(media_root) == []


def test_a_read_only_role_cannot_upload(as_role, db, media_root):
    product = ProductFactory()
    db.session.commit()

    response = as_role("warehouse").post(f"/admin/product/{product.id}/images/upload",
                                         content_type="multipart/form-data",
                                         data={"images": [(io.BytesIO(image_bytes()), "a.png")]})

    assert response.status_code == 403
    assert _stored_files(media_root) == []


def test_the_api_links_images_absolutely_and_media_is_served(as_role, app, db, media_root):
    product = ProductFactory(slug="lamp-api", is_active=True)
    VariantFactory(product=product)
    db.session.commit()
    _upload(as_role("merchandiser"), product, [("lamp.png", image_bytes("PNG"))])
    client = app.test_client()

    detail = client.get("/api/v1/products/lamp-api").get_json()

    image = detail["images"][0]
    assert image["url"].startswith("http://localhost/media/products/")
    assert image["thumbnail_url"].endswith("-200.webp") and image["large_url"].endswith("-800.webp")
    assert detail["primary_image"]["url"] == image["url"]
    served = client.get(image["url"].removeprefix("http://localhost"))
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/media/../instance/ecom.sqlite3").status_code == 404
