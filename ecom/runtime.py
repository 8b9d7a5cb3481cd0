"""What services need from the running app, looked up in one place: its settings and
its payment gateway.

The composition root installs them once (``init_app``, handing over the function that
picks a gateway - ``ecom.commerce.gateways.choose_gateway``); domain modules call
``settings()`` and ``payment_gateway()`` instead of reaching for ``current_app``.
Tests may put a gateway of their own in front (``use_gateway``).

This module imports no domain package (tests/ecom/test_architecture.py holds it to
that): every package may use it, so it must not depend on any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flask import Flask, current_app

EXTENSION = "ecom_runtime"

# (settings, intent_id or None) -> the gateway serving that intent, or new payments.
GatewayFactory = Callable[[Mapping, "str | None"], object]


@dataclass
class Runtime:
    settings: Mapping
    gateway_factory: GatewayFactory
    gateway_override: object | None = None


def init_app(app: Flask, *, gateway_factory: GatewayFactory) -> None:
    app.extensions[EXTENSION] = Runtime(settings=app.config, gateway_factory=gateway_factory)


def runtime(app: Flask | None = None) -> Runtime:
    return (app or current_app).extensions[EXTENSION]


def settings(app: Flask | None = None) -> Mapping:
    """The app's settings, as ``ecom.config.load_config`` read them (plus any override)."""
    return runtime(app).settings


def payment_gateway(intent_id: str | None = None, app: Flask | None = None):
    """The gateway (an ``ecom.commerce.gateways.base.PaymentGateway``) that owns ``intent_id``
    (simulated ``pi_sim_`` ids never go to Stripe), or, without one, the gateway new payments
    are opened with."""
    state = runtime(app)
    if state.gateway_override is not None:
        return state.gateway_override
    return state.gateway_factory(state.settings, intent_id)


def use_gateway(gateway, app: Flask | None = None) -> None:
    """Send every payment call of ``app`` to ``gateway`` (None: back to the configured one)."""
    runtime(app).gateway_override = gateway
