"""The bench's search, filtered list and facets on Oscar's models: what Oscar does out of the
box for a search without Solr, and the ORM equivalent of the app's filters and facets.

``/bench/search/?q=`` and ``/bench/products/?category=&min_price=&max_price=&attr.<name>=
&in_stock=&q=&sort=&page=[&facets=true]`` are one view: oscarapi's product list (its
``ProductLinkSerializer``, DRF's ``PageNumberPagination``, 24 a page with a total count) over
a queryset of Oscar's browsable products (parents and standalone, public) filtered like the
app's ``/api/v1/products`` (ecom/catalog/queries.py), with the app's facets
(ecom/catalog/navigation.py) computed by grouped counts when ``facets=true``.

- ``q``: every whitespace-separated word, case-insensitively contained (``icontains``) in the
  product's UPC, title or description - the text Oscar indexes for a product
  (oscar/search/indexes/product/item_text.txt), matched the way haystack's simple backend
  (Oscar's search without Solr or Elasticsearch) matches a word, the words ANDed as
  haystack's default operator does (the simple backend itself filters by the last word only
  and loads every hit: the fair form is this one).
- ``category``: the category with that slug and its descendants (treebeard's
  ``get_descendants_and_self``, as Oscar's category view does), through ProductCategory.
- ``min_price`` / ``max_price``: on the lowest price of the product's public children's stock
  records (the app: the lowest price of its active variants).
- ``attr.<name>=<v>[,<v>...]``: some public child has the attribute (ProductAttributeValue by
  the attribute's code) with a text value equal to one of the values, case-insensitively.
- ``in_stock=true|false``: some public child has a stock record with ``num_in_stock >
  num_allocated`` (Oscar's net stock level > 0; one partner, Oscar has no stock locations).
- ``sort``: price_asc (lowest price), price_desc (highest price), name, newest, rating (NULLs
  last); the default and a search: newest (Oscar orders products by ``-date_created``); every
  order ends with ``-id``, a stable order across pages.
- ``facets=true``: the answer's ``facets`` holds the same counts as the app's: products per
  category (the product's own category) under every filter but the category, per price bucket
  (the lowest price: 0, 25, 50, 100, 200, 500+; empty buckets left out) under every filter
  but the price, and per attribute value (products with a public child having it) under
  every filter but that attribute's own, the 50 most frequent values first.
"""

from decimal import Decimal, InvalidOperation

from django.db.models import Case, Count, Exists, F, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce
from oscar.core.loading import get_model
from oscarapi.serializers.product import ProductLinkSerializer
from rest_framework import generics
from rest_framework.exceptions import ValidationError

Product = get_model("catalogue", "Product")
Category = get_model("catalogue", "Category")
ProductCategory = get_model("catalogue", "ProductCategory")
ProductAttributeValue = get_model("catalogue", "ProductAttributeValue")
StockRecord = get_model("partner", "StockRecord")

SORTS = ("relevance", "price_asc", "price_desc", "newest", "name", "rating")
PRICE_EDGES = (Decimal(0), Decimal(25), Decimal(50), Decimal(100), Decimal(200), Decimal(500))
MAX_FACET_VALUES = 50


def public_child_records(**conditions):
    """The stock records of the outer product's public children meeting ``conditions``."""
    return StockRecord.objects.filter(product__parent=OuterRef("pk"), product__is_public=True, **conditions)


def child_prices(order: str):
    """The lowest (``price``) or highest (``-price``) stock record price of the product's
    public children, as a correlated subquery."""
    return Subquery(public_child_records(price__isnull=False).order_by(order).values("price")[:1])


def low_price():
    return child_prices("price")


def high_price():
    return child_prices("-price")


def price_bucket():
    """The price facet's bucket (index into PRICE_EDGES) of the product's lowest child price."""
    bucket = Case(*[When(price__gte=edge, then=Value(index))
                    for index, edge in reversed(list(enumerate(PRICE_EDGES)))], default=Value(0))
    return Subquery(public_child_records(price__isnull=False)
                    .order_by("price").annotate(bucket=bucket).values("bucket")[:1])


def in_stock_exists():
    return Exists(public_child_records(num_in_stock__gt=Coalesce(F("num_allocated"), Value(0))))


def attribute_exists(code: str, values: tuple[str, ...]):
    same = Q()
    for value in values:
        same |= Q(value_text__iexact=value)
    return Exists(ProductAttributeValue.objects.filter(
        same, product__parent=OuterRef("pk"), product__is_public=True, attribute__code=code))


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"  # as the app writes an amount


class Filters:
    """The query string, parsed and checked (a bad value: 400, like the app)."""

    def __init__(self, params):
        self.q = params.get("q", "").strip()
        self.category = params.get("category") or None
        self.min_price = self._price(params, "min_price")
        self.max_price = self._price(params, "max_price")
        stock = params.get("in_stock")
        if stock not in (None, "", "true", "false"):
            raise ValidationError({"in_stock": "true or false"})
        self.in_stock = None if stock in (None, "") else stock == "true"
        self.sort = params.get("sort") or "relevance"
        if self.sort not in SORTS:
            raise ValidationError({"sort": f"one of {', '.join(SORTS)}"})
        self.attributes = tuple(sorted(
            (key.removeprefix("attr."), tuple(v.strip() for v in value.split(",") if v.strip()))
            for key, value in params.items() if key.startswith("attr.") and value))
        self.facets = params.get("facets") == "true"

    @staticmethod
    def _price(params, name):
        raw = params.get(name)
        if raw in (None, ""):
            return None
        try:
            return Decimal(raw)
        except InvalidOperation:
            raise ValidationError({name: "a number"}) from None


class BenchProductList(generics.ListAPIView):
    """oscarapi's product list (same serializer, DRF's page-number pagination) with the
    app's filters, search and facets (module docstring)."""

    serializer_class = ProductLinkSerializer

    def get_queryset(self):
        self.filters = Filters(self.request.query_params)
        f = self.filters
        queryset = self.matching(f, category=True, price=True, attributes=True)
        if f.sort == "price_asc":
            if "low_price" not in queryset.query.annotations:
                queryset = queryset.annotate(low_price=low_price())
            queryset = queryset.order_by(F("low_price").asc(nulls_last=True), "-id")
        elif f.sort == "price_desc":
            queryset = queryset.annotate(high_price=high_price()).order_by(
                F("high_price").desc(nulls_last=True), "-id")
        elif f.sort == "name":
            queryset = queryset.order_by("title", "-id")
        elif f.sort == "rating":
            queryset = queryset.order_by(F("rating").desc(nulls_last=True), "-id")
        else:  # newest, and relevance: Oscar has no ranking without a search engine
            queryset = queryset.order_by("-date_created", "-id")
        return queryset

    def category_ids(self, slug):
        """The category with the slug and its descendants (a subquery), or None: no such."""
        category = Category.objects.filter(slug=slug).order_by("path").first()
        return category.get_descendants_and_self().values("pk") if category is not None else None

    def matching(self, f: Filters, *, category: bool, price: bool, attributes: bool | str):
        """Browsable products matching the search text and stock filter, and the category,
        price and attribute filters that are asked for (``attributes``: True for all, a name
        for every one but that one)."""
        queryset = Product.objects.browsable()
        for word in f.q.split():
            queryset = queryset.filter(Q(upc__icontains=word) | Q(title__icontains=word)
                                       | Q(description__icontains=word))
        if f.in_stock is not None:
            queryset = queryset.filter(in_stock_exists() if f.in_stock else ~in_stock_exists())
        if category and f.category:
            if not hasattr(self, "_category_ids"):
                self._category_ids = self.category_ids(f.category)
            if self._category_ids is None:
                return queryset.none()
            queryset = queryset.filter(Exists(ProductCategory.objects.filter(
                product=OuterRef("pk"), category__in=self._category_ids)))
        if price and (f.min_price is not None or f.max_price is not None):
            queryset = queryset.annotate(low_price=low_price())
            if f.min_price is not None and f.max_price is not None:  # BETWEEN: one subquery
                queryset = queryset.filter(low_price__range=(f.min_price, f.max_price))
            elif f.min_price is not None:
                queryset = queryset.filter(low_price__gte=f.min_price)
            else:
                queryset = queryset.filter(low_price__lte=f.max_price)
        for code, values in f.attributes:
            if attributes is True or attributes != code:
                queryset = queryset.filter(attribute_exists(code, values))
        return queryset

    def list(self, request, *args, **kwargs):
        response = super().list(request, *args, **kwargs)
        if self.filters.facets:
            response.data["facets"] = self.facets(self.filters)
        return response

    def facets(self, f: Filters) -> dict:
        """The app's facets (navigation.product_facets), one grouped count per dimension."""
        by_category = (
            ProductCategory.objects
            .filter(product__in=self.matching(f, category=False, price=True, attributes=True).values("pk"))
            .values("category__slug", "category__name")
            .annotate(count=Count("product", distinct=True))
            .order_by("-count", "category__name"))
        # The bucket of the lowest price is the lowest bucket of the children's prices: one
        # subquery per product (a CASE over a low_price annotation repeats it per edge).
        by_price = (
            self.matching(f, category=True, price=False, attributes=True)
            .annotate(bucket=price_bucket())
            .order_by().values("bucket").annotate(count=Count("pk")))
        buckets = {row["bucket"]: row["count"] for row in by_price}
        filtered_codes = [code for code, _ in f.attributes]
        attribute_rows = list(self.attribute_counts(
            self.matching(f, category=True, price=True, attributes=True), exclude=filtered_codes))
        for code in filtered_codes:
            attribute_rows += self.attribute_counts(
                self.matching(f, category=True, price=True, attributes=code), only=code)
        attributes: dict[str, list] = {}
        for row in sorted(attribute_rows, key=lambda r: (r["attribute__code"], -r["count"], r["value_text"])):
            found = attributes.setdefault(row["attribute__code"], [])
            if len(found) < MAX_FACET_VALUES:
                found.append({"value": row["value_text"], "count": row["count"]})
        return {
            "category": [{"slug": row["category__slug"], "name": row["category__name"], "count": row["count"]}
                         for row in by_category],
            "price": [{"min": money(edge),
                       "max": money(PRICE_EDGES[index + 1]) if index + 1 < len(PRICE_EDGES) else None,
                       "count": buckets[index]}
                      for index, edge in enumerate(PRICE_EDGES) if buckets.get(index)],
            "attributes": attributes,
        }

    @staticmethod
    def attribute_counts(products, *, exclude=(), only=None):
        """(attribute code, text value, products) over the public children of ``products``."""
        values = ProductAttributeValue.objects.filter(
            product__parent__in=products.values("pk"), product__is_public=True, value_text__isnull=False)
        values = values.filter(attribute__code=only) if only else values.exclude(attribute__code__in=exclude)
        return (values.values("attribute__code", "value_text")
                .annotate(count=Count("product__parent", distinct=True)).order_by())
