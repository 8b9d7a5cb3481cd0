"""Pricing: tax classes and rates, shipping zones and methods, promotions and vouchers, and the
one function that prices a cart or an order (``ecom.pricing.quote.quote_lines``)."""
