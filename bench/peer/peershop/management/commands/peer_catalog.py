"""``manage.py peer_catalog --products 2000``: the bench catalog, in Oscar's shape.

The same catalog as bench/datagen.py makes for the app, in SQL like it: product ``p`` is a
parent product (id ``p``, slug ``product-p``, the same title, description, rating and
creation time) in category ``1 + p % 20``, with one image and three child products (id
``N + 3(p-1) + v`` for N products, UPC ``SKU-p-v``, title the size, a ``size`` attribute),
each with one stock record at the app's variant price, stock and reservations (allocated).
One partner, one product class that tracks stock. Baskets and sessions are emptied too.
"""

import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

CATEGORIES = 20
ADJECTIVES = "ARRAY['Oak','Linen','Copper','Walnut','Slate','Cotton','Amber','Indigo']"
SIZES = "ARRAY['Small','Medium','Large']"
CATALOG_TABLES = ("catalogue_productattributevalue", "catalogue_productimage", "catalogue_productcategory",
                  "partner_stockrecord", "catalogue_product", "catalogue_productattribute",
                  "catalogue_productclass", "catalogue_category", "partner_partner")
SHOPPING_TABLES = ("basket_line", "basket_basket", "django_session")


class Command(BaseCommand):
    help = "Generate the bench catalog (parents x 3 children) unless it is already there."

    def add_arguments(self, parser):
        parser.add_argument("--products", type=int, default=2000)
        parser.add_argument("--force", action="store_true")

    def handle(self, *args, products, force, **options):
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {', '.join(SHOPPING_TABLES)} CASCADE")
            cursor.execute("SELECT count(*) FILTER (WHERE structure = 'parent'), "
                           "count(*) FILTER (WHERE structure = 'child') FROM catalogue_product")
            have = cursor.fetchone()
        if have == (products, products * 3) and not force:
            self.stdout.write(f"oscar catalog present: {products} products x 3 children")
            return
        started = time.monotonic()
        with transaction.atomic():
            self._generate(products)
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        self.stdout.write(f"oscar catalog generated: {products} products x 3 children in "
                          f"{time.monotonic() - started:.1f}s")

    def _generate(self, products):
        from oscar.apps.catalogue.models import Category

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(f"TRUNCATE {', '.join(CATALOG_TABLES)} RESTART IDENTITY CASCADE")
            cursor.execute("INSERT INTO partner_partner (code, name) VALUES ('bench', 'Bench')")
            cursor.execute("INSERT INTO catalogue_productclass (name, slug, requires_shipping, track_stock) "
                           "VALUES ('Goods', 'goods', true, true)")
            cursor.execute("INSERT INTO catalogue_productattribute (name, code, type, required, "
                           "product_class_id) VALUES ('Size', 'size', 'text', false, 1)")
        # treebeard keeps the materialised path; 20 roots through its API.
        categories = [Category.add_root(name=f"Category {g}", slug=f"category-{g}",
                                        description=f"Everything in category {g}").id
                      for g in range(1, CATEGORIES + 1)]
        with connection.cursor() as cursor:
            cursor.execute(f"""
                INSERT INTO catalogue_product (id, structure, upc, title, slug, description, rating,
                    date_created, date_updated, is_discountable, parent_id, product_class_id,
                    is_public, priority)
                SELECT g, 'parent', NULL, ({ADJECTIVES})[1 + g %% 8] || ' product ' || g,
                       'product-' || g,
                       'A sturdy, well made ' || lower(({ADJECTIVES})[1 + g %% 8]) || ' thing, number ' || g
                         || '. ' || repeat('Made to last and easy to care for. ', 4),
                       CASE WHEN g %% 3 = 0 THEN NULL ELSE round(1 + (g %% 400) / 100.0, 2) END,
                       now() - make_interval(mins => g), now(), true, NULL, 1, true, 0
                FROM generate_series(1, %(n)s) g""", {"n": products})
            cursor.execute(f"""
                INSERT INTO catalogue_product (id, structure, upc, title, slug, description, rating,
                    date_created, date_updated, is_discountable, parent_id, product_class_id,
                    is_public, priority)
                SELECT %(n)s + 3 * (p - 1) + v, 'child', 'SKU-' || p || '-' || v, ({SIZES})[v],
                       'product-' || p || '-' || lower(({SIZES})[v]), '', NULL,
                       now() - make_interval(mins => p), now(), true, p, NULL, true, 0
                FROM generate_series(1, %(n)s) p CROSS JOIN generate_series(1, 3) v
                ORDER BY p, v""", {"n": products})
            cursor.execute("SELECT setval(pg_get_serial_sequence('catalogue_product', 'id'), "
                           "(SELECT max(id) FROM catalogue_product))")
            cursor.execute("""
                INSERT INTO catalogue_productcategory (product_id, category_id)
                SELECT g, (%(categories)s)[1 + g %% 20] FROM generate_series(1, %(n)s) g""",
                           {"n": products, "categories": categories})
            cursor.execute("""
                INSERT INTO catalogue_productimage (product_id, original, caption, display_order,
                                                    date_created)
                SELECT g, 'images/products/' || g || '.jpg', 'Product ' || g, 0, now()
                FROM generate_series(1, %(n)s) g""", {"n": products})
            # Variant id vid = 3(p-1)+v, as in the app: the same price, stock and reservations.
            cursor.execute("""
                INSERT INTO partner_stockrecord (id, partner_sku, price_currency, price, num_in_stock,
                    num_allocated, low_stock_threshold, date_created, date_updated, partner_id,
                    product_id)
                SELECT vid, 'SKU-' || p || '-' || v, 'USD', 10.99 + p %% 90 + (v - 1) * 2,
                       CASE WHEN vid %% 17 = 0 THEN 0 ELSE 5 + vid %% 95 END,
                       CASE WHEN vid %% 17 = 0 THEN 0 ELSE vid %% 3 END, 5, now(), now(), 1, %(n)s + vid
                FROM (SELECT p, v, 3 * (p - 1) + v AS vid
                      FROM generate_series(1, %(n)s) p CROSS JOIN generate_series(1, 3) v) s
                ORDER BY vid""", {"n": products})
            cursor.execute("SELECT setval(pg_get_serial_sequence('partner_stockrecord', 'id'), "
                           "(SELECT max(id) FROM partner_stockrecord))")
            cursor.execute(f"""
                INSERT INTO catalogue_productattributevalue (attribute_id, product_id, value_text)
                SELECT 1, %(n)s + 3 * (p - 1) + v, ({SIZES})[v]
                FROM generate_series(1, %(n)s) p CROSS JOIN generate_series(1, 3) v""", {"n": products})
