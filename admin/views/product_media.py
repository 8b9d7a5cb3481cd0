"""Product images in the back office: uploaded on the product form (one or many, dropped on
the field or chosen), then ordered, given alt text, made primary or removed on the edit page.

Everything goes through ``ecom.catalog.images``; thumbnails are made by a worker job after the
commit (``workers.media.start_thumbnails``).
"""

from __future__ import annotations

from flask import current_app, flash, g, redirect, request, url_for
from flask_admin import expose
from wtforms import MultipleFileField

from admin.base import unit_of_work
from admin.security import current_actor
from ecom.catalog import images
from ecom.catalog.models import Product
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.runtime import settings
from workers.media import start_thumbnails

UPLOAD_FIELD = "upload_images"
ACCEPT = "image/jpeg,image/png,image/gif,image/webp,.jpg,.jpeg,.png,.gif,.webp"
# The endpoints that take image files, and so a request larger than MAX_REQUEST_BYTES.
UPLOAD_ENDPOINTS = frozenset({"product.create_view", "product.edit_view", "product.upload_images_view"})
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def upload_field() -> MultipleFileField:
    return MultipleFileField(
        "Upload images",
        description="JPEG, PNG, GIF or WebP. Choose several at once, or drop them on this field.",
        render_kw={"accept": ACCEPT, "multiple": True, "class": "form-control-file image-drop"})


def upload_request_limit(app) -> int:
    """The largest request the upload endpoints take: every file at its limit. A larger single
    file still arrives, and is refused with a message (not a bare 413)."""
    return int(settings(app)["MAX_IMAGE_BYTES"]) * images.MAX_FILES_PER_UPLOAD + MULTIPART_OVERHEAD_BYTES


def uploads_of(files) -> list[images.Upload]:
    """The chosen files, each read up to one byte past the limit (enough to say it is too big)."""
    limit = int(settings()["MAX_IMAGE_BYTES"])
    chosen = [f for f in files or [] if getattr(f, "filename", None)]
    return [images.Upload(filename=f.filename, data=f.stream.read(limit + 1)) for f in chosen]


class ProductImagesMixin:
    """Mixed into ProductView: the upload field on the create form and the images panel."""

    edit_template = "admin/product_edit.html"

    def edit_form(self, obj=None):
        form = super().edit_form(obj)
        # On the edit page uploads go through the images panel beside the form.
        if hasattr(form, UPLOAD_FIELD):
            delattr(form, UPLOAD_FIELD)
        return form

    def upload_from_form(self, form, model) -> None:
        """Called inside the form's unit of work: a refused file fails the whole save."""
        field = getattr(form, UPLOAD_FIELD, None)
        uploads = uploads_of(field.data if field is not None else None)
        if uploads:
            # On g, not the view: one view object serves every request at once.
            g.new_image_ids = [i.id for i in images.add_images(model, uploads, actor=current_actor())]

    def after_model_change(self, form, model, is_created):
        super().after_model_change(form, model, is_created)
        ids = g.pop("new_image_ids", None)
        if ids:
            start_thumbnails(ids, current_app._get_current_object())

    def render(self, template, **kwargs):
        if template == self.edit_template and kwargs.get("model") is not None:
            product = kwargs["model"]
            kwargs["product_images"] = [
                {"image": image, "thumbnail": images.thumbnail_url(image, 200),
                 "url": images.image_url(image)}
                for image in sorted(product.images, key=lambda i: (i.display_order, i.id))]
            kwargs["accept"] = ACCEPT
            kwargs["max_image_mb"] = int(settings()["MAX_IMAGE_BYTES"]) // 1_048_576
        return super().render(template, **kwargs)

    def _product_or_404(self, product_id: int) -> Product:
        return db.get_or_404(Product, product_id)

    def _back(self, product_id: int):
        return redirect(url_for(".edit_view", id=product_id) + "#product-images")

    @expose("/<int:product_id>/images/upload", methods=["POST"])
    def upload_images_view(self, product_id: int):
        if not self.may_write():
            return self.inaccessible_callback("upload_images_view")
        product = self._product_or_404(product_id)
        uploads = uploads_of(request.files.getlist("images"))
        added: list[int] = []
        with unit_of_work() as work:
            added = [i.id for i in images.add_images(product, uploads, actor=current_actor())]
        if work.ok:
            flash(f"{len(added)} image(s) uploaded.", "success")
            start_thumbnails(added, current_app._get_current_object())
        return self._back(product_id)

    @expose("/<int:product_id>/images", methods=["POST"])
    def images_view(self, product_id: int):
        if not self.may_write():
            return self.inaccessible_callback("images_view")
        product = self._product_or_404(product_id)
        delete_id = request.form.get("delete")
        with unit_of_work() as work:
            if delete_id:
                images.delete_image(images.get_image(product.id, _int(delete_id)), actor=current_actor())
            else:
                images.update_images(
                    product,
                    alt_texts={_int(k[4:]): v for k, v in request.form.items() if k.startswith("alt_")},
                    orders={_int(k[6:]): _int(v, "position") for k, v in request.form.items()
                            if k.startswith("order_")},
                    primary_id=_int(request.form["primary"]) if request.form.get("primary") else None,
                    actor=current_actor())
        if work.ok:
            flash("Image removed." if delete_id else "Images saved.", "success")
        return self._back(product_id)


def _int(text: str, what: str = "image") -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise ValidationFailed(f"The {what} must be a whole number.") from None
