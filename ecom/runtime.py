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


def payment_gateway(intent_id: str | None = None, app: Flask | None = None):
    """The gateway that owns ``intent_id`` (simulated ``pi_sim_`` ids never go to Stripe),
    or, without one, the gateway new payments are opened with."""
    state = runtime(app)
    if state.gateway_override is not None:
        return state.gateway_override
    from ecom.commerce.gateway import gateway_for_intent, get_gateway

    if intent_id is None:
        return get_gateway(state.settings)
    return gateway_for_intent(state.settings, intent_id)


def use_gateway(gateway, app: Flask | None = None) -> None:
    """Send every payment call of ``app`` to ``gateway`` (None: back to the configured one)."""
    runtime(app).gateway_override = gateway
