"""What services need from the running app, looked up in one place: its settings and
its payment gateway.

The composition root installs them once (``init_app``); domain modules call
``settings()`` and ``payment_gateway()`` instead of reaching for ``current_app``.
Tests may put a gateway of their own in front (``use_gateway``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask, current_app

from ecom.commerce.gateways.base import PaymentGateway
from ecom.commerce.gateways.simulated import SIMULATED_INTENT_PREFIX, SimulatedGateway
from ecom.commerce.gateways.stripe import StripeGateway

EXTENSION = "ecom_runtime"


@dataclass
class Runtime:
    settings: Mapping
    gateway_override: object | None = None


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Runtime(settings=app.config)


def runtime(app: Flask | None = None) -> Runtime:
    return (app or current_app).extensions[EXTENSION]


def settings(app: Flask | None = None) -> Mapping:
    """The app's settings, as ``ecom.config.load_config`` read them (plus any override)."""
    return runtime(app).settings


def payment_gateway(intent_id: str | None = None, app: Flask | None = None) -> PaymentGateway:
    """The gateway that owns ``intent_id`` (simulated ``pi_sim_`` ids never go to Stripe),
    or, without one, the gateway new payments are opened with."""
    state = runtime(app)
    if state.gateway_override is not None:
        return state.gateway_override
    return choose_gateway(state.settings, intent_id)


def choose_gateway(config: Mapping, intent_id: str | None = None) -> PaymentGateway:
    """Stripe when ``STRIPE_SECRET_KEY`` is set, else the simulated gateway; an intent the
    simulated gateway opened (``pi_sim_``) always stays with it."""
    webhook_secret = config.get("STRIPE_WEBHOOK_SECRET")
    simulated_intent = intent_id is not None and intent_id.startswith(SIMULATED_INTENT_PREFIX)
    if config.get("STRIPE_SECRET_KEY") and not simulated_intent:
        return StripeGateway(config["STRIPE_SECRET_KEY"], webhook_secret, config.get("STRIPE_API_BASE"))
    return SimulatedGateway(webhook_secret)


def use_gateway(gateway, app: Flask | None = None) -> None:
    """Send every payment call of ``app`` to ``gateway`` (None: back to the configured one)."""
    runtime(app).gateway_override = gateway
