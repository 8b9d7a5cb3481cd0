"""Categories, products (with images and variants inline), variants, reviews."""

from __future__ import annotations

from flask import Response, current_app, flash, g, redirect, stream_with_context, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.contrib.sqla.filters import IntEqualFilter
from flask_admin.model.template import EndpointLinkRowAction
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from markupsafe import Markup, escape
from sqlalchemy import and_, case, func, or_, select, union_all
from sqlalchemy.orm import selectinload
from wtforms import IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from admin.base import MAX_IMPORT_BYTES, StaffModelView, unit_of_work
from admin.links import list_url
from admin.security import Area, can_adjust, current_actor
from admin.views.product_media import UPLOAD_FIELD, ProductImagesMixin, upload_field
from ecom.catalog import csv_io, deletion, reviews, services
from ecom.catalog.models import Category, ImportJob, Product, Variant
from ecom.errors import ValidationFailed
from ecom.extensions import db
from ecom.inventory.models import Inventory, StockLocation, available_units
from workers.imports import start_import


# Optional in the form: an empty slug is generated from the name by the catalog service.
def slug_field(max_length: int) -> StringField:
    # Declared here because Flask-Admin would mark the NOT NULL column as required.
    return StringField("Slug", description="Leave empty to generate it from the name.",
                       validators=[Optional(), Length(max=max_length)],
                       filters=[lambda value: (value or "").strip() or None])


# The variant inline's box for stock that arrived (not a column: booked as a stock movement).
RECEIVE_FIELD = "receive_stock"


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired(),
                                             FileAllowed(["csv", "txt"], "A .csv file, please.")])


class LazyOptions:
    """Filter options read from the database on each page render (not at app start)."""

    def __init__(self, load):
        self.load = load

    def __iter__(self):
        return iter(self.load())

    def __bool__(self):
        return True


def _page_ids(rows) -> list[int]:
    return [row.id for row in rows]


def _like(term: str) -> str:
    escaped = term.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _category_path(view, context, model, name) -> Markup:
    """The category's place in the tree: its ancestors, then its name, indented by depth."""
    names = g.get("category_paths", {}).get(model.id) or [model.name]
    ancestors = "".join(f"{escape(ancestor)} › " for ancestor in names[:-1])
    return Markup('<span class="category-path" data-depth="{depth}" style="padding-left: {indent}em">'
                  '<span class="text-muted">{ancestors}</span><strong>{name}</strong></span>').format(
        depth=len(names) - 1, indent=1.5 * (len(names) - 1), ancestors=Markup(ancestors), name=names[-1])


class CategoryView(StaffModelView):
    area = Area.CATALOG
    # "name" shows the category's path in the tree (_category_path); sorting by it sorts by name.
    column_list = ["name", "slug", "parent", "display_order", "product_count", "updated_at"]
    column_searchable_list = ["name", "slug"]
    column_sortable_list = ["name", "slug", "display_order", "updated_at"]
    # Unsorted, the list is in tree order (each category under its parent): _apply_sorting.
    column_labels = {"product_count": "Products", "name": "Category"}
    column_descriptions = {"name": "Where the category sits in the tree: its parents, then its name"}
    form_columns = ["name", "slug", "parent", "description", "image_url", "display_order"]
    form_extra_fields = {"slug": slug_field(140)}
    column_formatters = {"product_count": lambda v, c, m, n: g.get("category_counts", {}).get(m.id, 0),
                         "name": _category_path}

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if not kwargs.get("execute", True):
            return count, rows  # a query for the caller to run (the CSV export)
        g.category_paths = services.category_paths()
        ids = _page_ids(rows)
        g.category_counts = dict(
            db.session.execute(
                # count(*): off ix_products_category_id alone (count(id) reads every product row).
                select(Product.category_id, func.count())
                .where(Product.category_id.in_(ids))
                .group_by(Product.category_id)
            ).all()
        ) if ids else {}
        return count, rows

    def prepare_model(self, model, is_created):
        services.prepare_category(model)

    def _apply_sorting(self, query, joins, sort_column, sort_desc):
        if sort_column is not None:
            return super()._apply_sorting(query, joins, sort_column, sort_desc)
        order = services.category_tree_order()
        if not order:
            return query, joins
        return query.order_by(case({category_id: rank for rank, category_id in enumerate(order)},
                                   value=Category.id, else_=len(order)), Category.id), joins

    def delete_refusal(self, model):
        return deletion.category_delete_refusal(model)

    def way_out_url(self, model, refusal):
        return list_url("product", [("category_id", "IntEqualFilter", str(model.id))])


class ProductView(ProductImagesMixin, StaffModelView):
    area = Area.CATALOG
    list_template = "admin/product_list.html"
    # Stock per variant and location, each cell adjustable by the roles that may (inventory).
    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-cubes", "inventory.product_stock_view", id_arg="product_id",
                              title="Stock by location"),
    ]
    column_list = ["name", "slug", "category", "base_price", "min_price", "max_price",
                   "variant_count", "stock", "is_active", "featured", "updated_at"]
    column_searchable_list = ["name", "slug"]
    column_sortable_list = ["name", "slug", ("category", "category.name"), "base_price",
                            "min_price", "is_active", "featured", "updated_at"]
    # Newest first by primary key: served from the index even with 100 000 products.
    column_default_sort = ("id", True)
    column_filters = [
        IntEqualFilter(Product.category_id, "Category", options=LazyOptions(lambda: [
            (str(c.id), c.name) for c in db.session.scalars(select(Category).order_by(Category.name))
        ])),
        "is_active", "featured", "min_price", "max_price", "base_price",
    ]
    column_labels = {"variant_count": "Variants", "stock": "Available", "min_price": "Min price",
                     "max_price": "Max price", "is_active": "Active"}
    column_formatters = {
        "variant_count": lambda v, c, m, n: g.get("product_aggregates", {}).get(m.id, (0, 0))[0],
        "stock": lambda v, c, m, n: g.get("product_aggregates", {}).get(m.id, (0, 0))[1],
    }
    form_columns = ["name", "slug", "category", "tax_class", "description", "base_price", "is_active",
                    "featured", UPLOAD_FIELD, "variants"]
    form_extra_fields = {"slug": slug_field(220), UPLOAD_FIELD: upload_field()}
    inline_models = [
        (Variant, {"form_columns": ["id", "sku", "name", "price", "compare_at_price", "weight", "attributes",
                                    "is_active", RECEIVE_FIELD],
                   "form_extra_fields": {RECEIVE_FIELD: IntegerField(
                       "Receive stock (units)", validators=[Optional(), NumberRange(min=1, max=1_000_000)],
                       description="Units that arrived: booked as a 'received' stock movement.")},
                   "form_args": {"attributes": {"description": 'A JSON object, e.g. {"size": "M"}'}}}),
    ]
    column_details_list = ["name", "slug", "category", "description", "base_price", "min_price",
                           "max_price", "is_active", "featured", "rating_average", "rating_count",
                           "images", "variants", "created_at", "updated_at"]
    search_placeholder_text = "Name, slug or SKU"

    def search_placeholder(self):
        return self.search_placeholder_text

    def _apply_search(self, query, count_query, joins, count_joins, search):
        # The ids of products whose name, slug or a variant's SKU holds the text. IN keeps one
        # row per product (a join would repeat them), and each branch of the UNION is served
        # by its trigram index on PostgreSQL (migration 0003); an EXISTS OR'ed with the name
        # match would make the planner test every product in turn instead.
        term = _like(search)
        condition = Product.id.in_(union_all(
            select(Product.id).where(or_(Product.name.ilike(term, escape="\\"),
                                         Product.slug.ilike(term, escape="\\"))),
            select(Variant.product_id).where(Variant.sku.ilike(term, escape="\\")),
        ))
        query = query.filter(condition)
        if count_query is not None:
            count_query = count_query.filter(condition)
        return query, count_query, joins, count_joins

    def get_list(self, *args, **kwargs):
        count, rows = super().get_list(*args, **kwargs)
        if not kwargs.get("execute", True):
            return count, rows  # a query for the caller to run (the CSV export)
        ids = _page_ids(rows)
        aggregates = {}
        if ids:
            available = func.coalesce(func.sum(Inventory.available), 0)
            for product_id, n, stock in db.session.execute(
                select(Variant.product_id, func.count(Variant.id), available)
                .outerjoin(Inventory, and_(Inventory.variant_id == Variant.id,
                                           Inventory.location_id.in_(select(StockLocation.id)
                                                                     .where(StockLocation.ships))))
                .where(Variant.product_id.in_(ids))
                .group_by(Variant.product_id)
            ).all():
                aggregates[product_id] = (n, int(stock))
        g.product_aggregates = aggregates
        return count, rows

    def prepare_model(self, model, is_created):
        services.prepare_product(model)
        services.finish_product(model)

    def on_model_change(self, form, model, is_created):
        super().on_model_change(form, model, is_created)
        self._receive_stock(model)
        self.upload_from_form(form, model)

    def _receive_stock(self, model) -> None:
        """Units typed in a variant's "Receive stock" box, booked through the adjust service."""
        from ecom.inventory.services import receive_stock

        for variant in model.variants:
            units = getattr(variant, RECEIVE_FIELD, None)
            if units:
                if not can_adjust(Area.INVENTORY):
                    raise ValidationFailed("Your role may not change stock.")
                receive_stock(variant, int(units), actor=current_actor(), note="from the product form")
                setattr(variant, RECEIVE_FIELD, None)

    def delete_refusal(self, model):
        return deletion.product_delete_refusal(model)

    def way_out_url(self, model, refusal):
        return url_for(".deactivate_view", product_id=model.id)

    @expose("/deactivate/<int:product_id>", methods=["POST"])
    def deactivate_view(self, product_id: int):
        if not self.may_write():
            return _forbidden()
        product = db.get_or_404(Product, product_id)
        with unit_of_work() as work:
            services.set_products_active([product.id], False, actor=current_actor())
        if work.ok:
            flash(f"{product.name} was deactivated: it is no longer in the shop; its orders keep it.",
                  "success")
        return redirect(url_for(".edit_view", id=product_id))

    def _audit_snapshot(self, model) -> dict:
        # Inline rows are part of the product's record: changes to them show in its audit entry.
        snapshot = super()._audit_snapshot(model)
        snapshot["variants"] = {
            v.sku: f"{v.name} {v.price} {v.attributes or {}}{'' if v.is_active else ' (inactive)'}"
            for v in model.variants
        }
        snapshot["images"] = [image.url for image in model.images]
        return snapshot

    def _bulk(self, ids, change, done: str):
        with unit_of_work() as work:
            n = change([int(i) for i in ids], actor=current_actor())
        if work.ok:
            flash(f"{n} product(s) {done}.", "success")

    @expose("/export.csv")
    def export_csv(self):
        """The filtered list as CSV, in the import format, streamed."""
        view_args = self._get_list_extra_args()
        _, query = self.get_list(0, None, False, view_args.search, self._get_list_filter_args(),
                                 execute=False, page_size=0)
        matching = query.with_entities(Product.id).order_by(None).scalar_subquery()
        rows = csv_io.export_products_csv(select(Product).where(Product.id.in_(matching)))
        return Response(stream_with_context(rows), mimetype="text/csv",
                        headers={"Content-Disposition": "attachment; filename=products.csv"})

    @expose("/import", methods=["GET", "POST"])
    def import_view(self):
        if not self.may_write():
            return _forbidden()
        form = ImportForm()
        if form.validate_on_submit():
            upload = form.file.data
            raw = upload.read(MAX_IMPORT_BYTES + 1)
            with unit_of_work() as work:
                if len(raw) > MAX_IMPORT_BYTES:
                    raise ValidationFailed("The file is larger than 20 MB.")
                try:
                    content = raw.decode("utf-8-sig")
                except UnicodeDecodeError:
                    raise ValidationFailed("The file is not UTF-8 text.") from None
                job = csv_io.create_import_job(content, filename=upload.filename or "upload.csv",
                                               user_id=current_actor().user_id)
            if work.ok:
                start_import(job, current_app._get_current_object())
                return redirect(url_for(".import_job_view", job_id=job.id))
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        jobs = db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(10)).all()
        return self.render("admin/product_import.html", form=form, jobs=jobs, columns=csv_io.COLUMNS)

    @expose("/import/<int:job_id>")
    def import_job_view(self, job_id: int):
        job = db.get_or_404(ImportJob, job_id)
        return self.render("admin/import_job.html", job=job)

    @action("activate", "Activate")
    def action_activate(self, ids):
        self._bulk(ids, lambda i, actor: services.set_products_active(i, True, actor=actor), "activated")

    @action("deactivate", "Deactivate")
    def action_deactivate(self, ids):
        self._bulk(ids, lambda i, actor: services.set_products_active(i, False, actor=actor), "deactivated")

    @action("feature", "Feature")
    def action_feature(self, ids):
        self._bulk(ids, lambda i, actor: services.set_products_featured(i, True, actor=actor), "featured")

    @action("unfeature", "Unfeature")
    def action_unfeature(self, ids):
        self._bulk(ids, lambda i, actor: services.set_products_featured(i, False, actor=actor), "unfeatured")


def _forbidden():
    from flask import abort

    abort(403)


def _attributes_text(view, context, model, name):
    if not model.attributes:
        return ""
    return Markup("<br>").join(escape(f"{k}: {v}") for k, v in sorted(model.attributes.items()))


class VariantView(StaffModelView):
    area = Area.CATALOG
    column_list = ["sku", "name", "product", "price", "weight", "attributes", "stock", "is_active"]
    column_searchable_list = ["sku", "name"]
    column_sortable_list = ["sku", "name", "price", "weight", "is_active"]
    column_default_sort = ("sku", False)
    column_filters = ["is_active", "price"]
    column_labels = {"stock": "Available / on hand", "is_active": "Active"}
    column_formatters = {
        "attributes": _attributes_text,
        "stock": lambda v, c, m, n: (f"{available_units(m)} / {sum(i.quantity for i in m.inventories)}"
                                     if m.inventories else "—"),
    }
    form_columns = ["product", "sku", "name", "price", "compare_at_price", "weight", "attributes",
                    "is_active"]
    form_args = {"attributes": {"description": 'A JSON object, e.g. {"size": "M", "colour": "red"}'}}
    column_extra_row_actions = [
        EndpointLinkRowAction("fa fa-cubes", "inventory.adjust_view", id_arg="variant_id",
                              title="Adjust stock by location"),
    ]

    def get_query(self):
        return super().get_query().options(selectinload(Variant.inventories))

    def prepare_model(self, model, is_created):
        services.prepare_variant(model)
        db.session.flush()
        services.ensure_variant_inventory(model)
        services.refresh_price_range(model.product)

    def delete_refusal(self, model):
        return deletion.variant_delete_refusal(model)

    def way_out_url(self, model, refusal):
        return url_for(".deactivate_view", variant_id=model.id)

    @expose("/deactivate/<int:variant_id>", methods=["POST"])
    def deactivate_view(self, variant_id: int):
        if not self.may_write():
            return _forbidden()
        variant = db.get_or_404(Variant, variant_id)
        with unit_of_work() as work:
            deletion.deactivate_variant(variant, actor=current_actor())
        if work.ok:
            flash(f"{variant.sku} was deactivated: it can no longer be bought.", "success")
        return redirect(url_for(".index_view"))

    def remove_model(self, model):
        # The service drops the row, recomputes the product's price range and audits it,
        # all in the view's one unit of work.
        services.delete_variant(model, actor=current_actor())


class ReviewView(StaffModelView):
    area = Area.CATALOG
    _can_create = False
    _can_edit = False
    column_list = ["product", "user", "rating", "title", "verified_purchase", "is_hidden", "created_at"]
    column_filters = ["rating", "is_hidden", "verified_purchase", "created_at"]
    column_searchable_list = ["title", "comment"]
    column_sortable_list = ["rating", "is_hidden", "created_at"]
    column_default_sort = ("created_at", True)
    column_labels = {"is_hidden": "Hidden"}
    column_auto_select_related = True

    def _moderate(self, ids, hidden: bool):
        with unit_of_work() as work:
            changed = reviews.set_reviews_hidden(ids, hidden, actor=current_actor())
        if work.ok:
            flash(f"{changed} review(s) {'hidden' if hidden else 'shown'}.", "success")

    @action("hide", "Hide")
    def action_hide(self, ids):
        self._moderate(ids, True)

    @action("show", "Show")
    def action_show(self, ids):
        self._moderate(ids, False)
