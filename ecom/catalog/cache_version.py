"""One version number for everything the storefront's catalog pages show.

A commit that wrote a row of a catalog table (categories, products, images, variants,
inventory, reviews) bumps ``ecom:catalog:version`` in Redis right after it committed,
whichever process made it: an API request, a back-office form, a CSV import, a worker
expiring reservations. Response caches key what they store by the version they read
*before* querying, so a stored page is never labelled newer than the data it was built
from. How writes are seen, and what is not seen, is ``ecom.cache_versions``'s; the page
cache's time limit (CATALOG_CACHE_SECONDS) bounds how long an unseen change stays unseen.

Without ``REDIS_URL`` there is no shared version and no catalog cache.
"""

from __future__ import annotations

from ecom.cache_versions import TableVersion

CATALOG_TABLES = frozenset({"categories", "products", "product_images", "variants", "inventory", "reviews"})
CATALOG_VERSION = TableVersion("catalog cache", "ecom:catalog:version", CATALOG_TABLES,
                               falls_back="pages come from the database")

VERSION_KEY = CATALOG_VERSION.key
init_app = CATALOG_VERSION.init_app
redis_client = CATALOG_VERSION.client  # None without REDIS_URL or during a back-off
redis_failed = CATALOG_VERSION.failed
current_version = CATALOG_VERSION.current
start_version = CATALOG_VERSION.start
bump_version = CATALOG_VERSION.bump
