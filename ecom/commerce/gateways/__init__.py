"""Payment gateways: the protocol and value types (``base``), the real Stripe client
(``stripe``), a simulated stand-in (``simulated``) and signed-webhook parsing (``webhooks``).

Which gateway serves a payment is chosen in one place, ``ecom.runtime.payment_gateway``.
"""
