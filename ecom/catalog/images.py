"""Product images uploaded through the back office: stored through ``ecom.media``, checked by
content first, ordered, one of them primary, each with alt text; thumbnails made afterwards
(``make_thumbnails``, run by a worker job).

Every function flushes and leaves the commit to its caller. Files are written before the
commit (a refused upload writes nothing: every file is checked before the first is stored);
files of a deleted image go after the commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import func, select

from ecom.actor import Actor
from ecom.audit.services import record_change
from ecom.catalog.models import Product, ProductImage
from ecom.errors import NotFound, ValidationFailed
from ecom.extensions import db
from ecom.media.cleanup import forget_on_rollback
from ecom.media.images import THUMBNAIL_SIZES, CheckedImage, check_image, make_thumbnail
from ecom.media.storage import storage
from ecom.runtime import settings
from ecom.unit_of_work import after_commit

MAX_FILES_PER_UPLOAD = 20
ALT_TEXT_MAX = 300


@dataclass(frozen=True)
class Upload:
    filename: str | None
    data: bytes


def image_url(image: ProductImage) -> str:
    """Where the image is fetched: the storage's URL of an upload, else the URL given."""
    if image.storage_key:
        return storage().url(image.storage_key)
    return image.url


def thumbnail_url(image: ProductImage, size: int) -> str:
    """The thumbnail of ``size`` px once made; the original until then."""
    key = (image.thumbnails or {}).get(str(size))
    return storage().url(key) if key else image_url(image)


def check_uploads(uploads: list[Upload]) -> list[CheckedImage]:
    """Every upload checked. Raises ValidationFailed naming each refused file; then nothing
    may be stored."""
    if not uploads:
        raise ValidationFailed("Choose one or more image files to upload.", {"images": ["No file chosen."]})
    if len(uploads) > MAX_FILES_PER_UPLOAD:
        raise ValidationFailed(f"At most {MAX_FILES_PER_UPLOAD} images at a time.",
                               {"images": ["Too many files."]})
    max_bytes = int(settings()["MAX_IMAGE_BYTES"])
    checked, problems = [], []
    for upload in uploads:
        try:
            checked.append(check_image(upload.data, upload.filename, max_bytes=max_bytes))
        except ValidationFailed as exc:
            problems.append(exc.message)
    if problems:
        raise ValidationFailed("Nothing was uploaded. " + " ".join(problems), {"images": problems})
    return checked


def add_images(product: Product, uploads: list[Upload], *, actor: Actor) -> list[ProductImage]:
    """Store the uploads as the product's next images (the first becomes primary if it has
    none), audited. Raises ValidationFailed (nothing stored) for any refused file."""
    checked = check_uploads(uploads)
    backend = storage()
    order = db.session.scalar(select(func.coalesce(func.max(ProductImage.display_order), -1))
                              .where(ProductImage.product_id == product.id))
    has_primary = any(image.is_primary for image in product.images)
    written: list[str] = []
    images = []
    try:
        for index, image in enumerate(checked, start=1):
            key = f"products/{product.id}/{secrets.token_hex(8)}.{image.extension}"
            backend.save(key, image.data, image.content_type)
            written.append(key)
            images.append(ProductImage(
                product_id=product.id, url=backend.url(key), storage_key=key,
                alt_text=_default_alt(product, image.filename), is_primary=False,
                display_order=order + index, content_type=image.content_type,
                byte_size=len(image.data), width=image.width, height=image.height, thumbnails={}))
    except Exception:
        for key in written:  # best effort: the files of a failed upload go again
            _delete_quietly(backend, key)
        raise
    forget_on_rollback(backend, written)
    if not has_primary and images:
        images[0].is_primary = True
    db.session.add_all(images)
    db.session.flush()
    db.session.expire(product, ["images"])
    record_change(actor, "upload_images", "products", product.id, None,
                  {"images": [f"{i.storage_key} ({c.filename})"
                              for i, c in zip(images, checked, strict=True)]},
                  label=product.name)
    return images


def _default_alt(product: Product, filename: str) -> str:
    return product.name[:ALT_TEXT_MAX]


def update_images(product: Product, *, alt_texts: dict[int, str], orders: dict[int, int],
                  primary_id: int | None, actor: Actor) -> None:
    """Set alt texts, the display order and the primary image of ``product``'s images, audited.
    Raises ValidationFailed (an image of another product, alt text too long)."""
    images = {image.id: image for image in product.images}
    unknown = (set(alt_texts) | set(orders) | ({primary_id} if primary_id else set())) - set(images)
    if unknown:
        raise ValidationFailed("Those images are not this product's; reload the page.")
    before = _state(product)
    for image_id, text in alt_texts.items():
        text = (text or "").strip()
        if len(text) > ALT_TEXT_MAX:
            raise ValidationFailed(f"Alt text has at most {ALT_TEXT_MAX} characters.",
                                   {"alt_text": ["Too long."]})
        images[image_id].alt_text = text
    ranked = sorted(images.values(), key=lambda i: (orders.get(i.id, i.display_order), i.display_order, i.id))
    for position, image in enumerate(ranked):
        image.display_order = position
    if primary_id is not None:
        for image in images.values():
            image.is_primary = image.id == primary_id
    db.session.flush()
    db.session.expire(product, ["images"])
    after = _state(product)
    if after != before:
        record_change(actor, "update_images", "products", product.id, before, after, label=product.name)


def _state(product: Product) -> dict:
    return {"images": [f"{i.id}{' (primary)' if i.is_primary else ''}: {i.alt_text}"
                       for i in sorted(product.images, key=lambda i: (i.display_order, i.id))]}


def delete_image(image: ProductImage, *, actor: Actor) -> None:
    """Remove an image; its files go after the commit. If it was primary the next one takes
    over. Audited."""
    product = image.product
    keys = [image.storage_key, *(image.thumbnails or {}).values()] if image.storage_key else []
    was_primary = image.is_primary
    label = image.storage_key or image.url
    db.session.delete(image)
    db.session.flush()
    db.session.expire(product, ["images"])
    remaining = sorted(product.images, key=lambda i: (i.display_order, i.id))
    if was_primary and remaining:
        remaining[0].is_primary = True
        db.session.flush()
    record_change(actor, "delete_image", "products", product.id, {"image": label}, None, label=product.name)
    if keys:
        backend = storage()
        after_commit(lambda: [_delete_quietly(backend, key) for key in keys])


def get_image(product_id: int, image_id: int) -> ProductImage:
    image = db.session.get(ProductImage, image_id)
    if image is None or image.product_id != product_id:
        raise NotFound("No such image of this product.")
    return image


def make_thumbnails(image_id: int) -> dict | None:
    """Make the image's missing WebP thumbnails (``THUMBNAIL_SIZES``) and record their keys.
    Idempotent: sizes already made are left alone. None when the image is gone or was given
    by URL."""
    image = db.session.get(ProductImage, image_id)
    if image is None or not image.storage_key:
        return None
    thumbnails = dict(image.thumbnails or {})
    missing = [size for size in THUMBNAIL_SIZES if str(size) not in thumbnails]
    if not missing:
        return thumbnails
    backend = storage()
    original = backend.read(image.storage_key)
    stem = image.storage_key.rsplit(".", 1)[0]
    for size in missing:
        key = f"{stem}-{size}.webp"
        backend.save(key, make_thumbnail(original, size), "image/webp")
        thumbnails[str(size)] = key
    image.thumbnails = thumbnails
    db.session.flush()
    return thumbnails


def images_without_thumbnails(limit: int = 100) -> list[int]:
    """Uploaded images whose thumbnails are not all made (for a sweep after a lost job), oldest
    first. Read in batches: the thumbnails column is JSON, compared here rather than in SQL."""
    found: list[int] = []
    after = 0
    while len(found) < limit:
        batch = db.session.execute(select(ProductImage.id, ProductImage.thumbnails)
                                   .where(ProductImage.storage_key.is_not(None), ProductImage.id > after)
                                   .order_by(ProductImage.id).limit(500)).all()
        if not batch:
            break
        found += [i for i, thumbs in batch if any(str(s) not in (thumbs or {}) for s in THUMBNAIL_SIZES)]
        after = batch[-1][0]
    return found[:limit]


def _delete_quietly(backend, key: str) -> None:
    try:
        backend.delete(key)
    except Exception:  # noqa: BLE001 - a file left behind costs space, not correctness
        import logging

        logging.getLogger(__name__).warning("could not delete stored file %s", key, exc_info=True)
