"""The composition root: builds the Flask app from the domain (``ecom``) and its edges
(``admin``, ``storefront_api``, ``workers``), with the web app's own concerns - request
logging, metrics, the health check and the CLI registry.

Nothing under ``ecom/`` imports this package (tests/ecom/test_architecture.py checks it).
"""
