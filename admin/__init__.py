"""The Flask-Admin back office at /admin/."""

from flask import Blueprint, Flask
from flask_admin import Admin
from flask_admin.theme import Bootstrap4Theme


def init_admin(app: Flask) -> None:
    """Register the back office: sign-in, dashboard and every view of back-office.md."""
    from admin.home import DashboardView
    from admin.security import init_login
    from admin.views.catalog import CategoryView, ProductView, ReviewView, VariantView
    from admin.views.customers import CustomerView
    from admin.views.inventory import InventoryView, ReservationView, StockMovementView, StoreView
    from admin.views.jobs import JobsView
    from admin.views.locations import PurchaseOrderView, StockLocationView, TransferView
    from admin.views.orders import FulfillmentView, OrderView
    from admin.views.people import AuditLogView, NotificationView, UserView
    from admin.views.pricing import pricing_views
    from ecom.audit.models import AuditLog
    from ecom.catalog.models import Category, Product, Review, Variant
    from ecom.commerce.models import Order
    from ecom.fulfillment.models import Fulfillment
    from ecom.identity.models import User
    from ecom.inventory.models import Inventory, StockLocation, StockMovement, StockReservation
    from ecom.notifications.models import Notification
    from ecom.stockroom.models import PurchaseOrder, StockTransfer
    from ecom.stores.models import Store

    init_login(app)
    from admin.formatting import init_formatting

    init_formatting(app)
    # Registered before Flask-Admin's own blueprint so these templates win on equal names.
    app.register_blueprint(Blueprint("backoffice", __name__, template_folder="templates"))
    admin = Admin(
        app,
        name="Shop back office",
        index_view=DashboardView(name="Dashboard", url="/admin"),
        theme=Bootstrap4Theme(base_template="admin/base_layout.html",
                              swatch=app.config.get("FLASK_ADMIN_SWATCH", "cerulean"), fluid=True),
    )
    catalog, stock, sales, system = "Catalog", "Stock", "Sales", "Administration"
    admin.add_views(
        CategoryView(Category, name="Categories", endpoint="category", category=catalog),
        ProductView(Product, name="Products", endpoint="product", category=catalog),
        VariantView(Variant, name="Variants", endpoint="variant", category=catalog),
        ReviewView(Review, name="Reviews", endpoint="review", category=catalog),
        InventoryView(Inventory, name="Inventory", endpoint="inventory", category=stock),
        StockMovementView(StockMovement, name="Stock movements", endpoint="stockmovement", category=stock),
        ReservationView(StockReservation, name="Reservations", endpoint="reservation", category=stock),
        StoreView(Store, name="Stores", endpoint="store", category=stock),
        StockLocationView(StockLocation, name="Stock locations", endpoint="stocklocation", category=stock),
        TransferView(StockTransfer, name="Transfers", endpoint="transfer", category=stock),
        PurchaseOrderView(PurchaseOrder, name="Purchase orders", endpoint="purchaseorder", category=stock),
        FulfillmentView(Fulfillment, name="Fulfillment queue", endpoint="fulfillment", category=sales),
        OrderView(Order, name="Orders", endpoint="order", category=sales),
        CustomerView(User, name="Customers", endpoint="customer", category=sales),
        UserView(User, name="Users", endpoint="user", category=system),
        NotificationView(Notification, name="Notifications", endpoint="notification", category=system),
        JobsView(name="Jobs", endpoint="jobs", category=system),
        AuditLogView(AuditLog, name="Audit log", endpoint="auditlog", category=system),
    )
    admin.add_views(*pricing_views())
    app.extensions["backoffice"] = admin
    from admin.base import init_guards

    init_guards(app, {view.blueprint.name for view in admin._views if view.blueprint is not None})
