"""The e-commerce operations platform: domain packages and the app factory."""

__version__ = "0.1.0"
