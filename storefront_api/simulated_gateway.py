"""The simulated gateway's 3-D Secure page: ``/simulated-gateway/authenticate/<intent id>``.

What Stripe's authentication page is for a real card, for the simulator's test cards
(``pm_card_threeDSecure2Required``, ``pm_card_authenticationRequired``): a page a person
opens in a browser, with "Authenticate" and "Fail" buttons. Either settles the intent and
runs the one finaliser (``ecom.commerce.authentication``). Registered only where the
simulator may run: never in production unless ALLOW_SIMULATED_GATEWAY says so.

The page loads nothing and runs no script; its one inline style carries the response's
CSP nonce (``shop.security_headers``).
"""

from __future__ import annotations

from flask import Blueprint, Flask, redirect, render_template_string, request, url_for
from flask_wtf.csrf import generate_csrf

from ecom.commerce.authentication import settle_authentication, simulated_intent, waiting_for_customer
from ecom.commerce.gateways.base import SUCCEEDED, from_minor
from ecom.config import PRODUCTION
from ecom.errors import NotFound
from ecom.unit_of_work import commit, rollback

PATH = "/simulated-gateway"
simulated_gateway = Blueprint("simulated_gateway", __name__, url_prefix=PATH)

PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>3-D Secure - simulated gateway</title>
  <style nonce="{{ nonce }}">
    body { font-family: system-ui, sans-serif; background: #f4f5f7; margin: 0; }
    main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem;
           border-radius: .5rem; box-shadow: 0 1px 4px rgba(0,0,0,.15); }
    h1 { font-size: 1.25rem; margin-top: 0; }
    .amount { font-size: 1.5rem; font-weight: 600; }
    .note { color: #666; font-size: .875rem; }
    form { display: inline-block; margin-right: .5rem; }
    button { font-size: 1rem; padding: .6rem 1.4rem; border: 0; border-radius: .3rem; cursor: pointer; }
    #authenticate { background: #2e7d32; color: #fff; }
    #fail { background: #c62828; color: #fff; }
    .outcome { font-weight: 600; }
  </style>
</head>
<body>
<main>
  <h1>Confirm your payment</h1>
  <p class="note">Simulated gateway: a stand-in for the card issuer's 3-D Secure check. No money moves.</p>
  <p>Order <strong id="order-number">{{ order_number }}</strong></p>
  <p class="amount" id="amount">{{ amount }} {{ currency }}</p>
  {% if waiting %}
  <form method="post" action="{{ action }}">
    <input type="hidden" name="csrf_token" value="{{ csrf }}">
    <input type="hidden" name="outcome" value="authenticate">
    <button type="submit" id="authenticate">Authenticate</button>
  </form>
  <form method="post" action="{{ action }}">
    <input type="hidden" name="csrf_token" value="{{ csrf }}">
    <input type="hidden" name="outcome" value="fail">
    <button type="submit" id="fail">Fail</button>
  </form>
  {% else %}
  <p class="outcome" id="outcome" data-status="{{ status }}">{{ outcome }}</p>
  <p class="note">You can close this page and return to the shop.</p>
  {% endif %}
</main>
</body>
</html>
"""

OUTCOMES = {SUCCEEDED: "Payment authenticated: the payment succeeded.",
            "canceled": "This payment was cancelled."}
NOT_WAITING = "Authentication failed: the payment was declined."
NOTHING_TO_DO = "This payment is not waiting for authentication."


@simulated_gateway.get("/authenticate/<intent_id>")
def authentication_page(intent_id: str):
    from shop.security_headers import csp_nonce

    try:
        payment, intent = simulated_intent(intent_id)
    except NotFound:
        return "Unknown payment intent.", 404, {"Content-Type": "text/plain; charset=utf-8"}
    outcome = OUTCOMES.get(intent.status, NOT_WAITING if intent.failure_message else NOTHING_TO_DO)
    page = render_template_string(
        PAGE, nonce=csp_nonce(), csrf=generate_csrf(), order_number=payment.order.order_number,
        amount=from_minor(intent.amount_minor), currency=intent.currency.upper(),
        waiting=waiting_for_customer(intent), status=intent.status, outcome=outcome,
        action=url_for(".authenticate", intent_id=intent_id))
    return page, 200, {"Cache-Control": "no-store"}


@simulated_gateway.post("/authenticate/<intent_id>")
def authenticate(intent_id: str):
    outcome = request.form.get("outcome")
    if outcome not in ("authenticate", "fail"):
        return "Choose Authenticate or Fail.", 400, {"Content-Type": "text/plain; charset=utf-8"}
    try:
        settle_authentication(intent_id, approve=outcome == "authenticate")
    except NotFound:
        rollback()
        return "Unknown payment intent.", 404, {"Content-Type": "text/plain; charset=utf-8"}
    commit()
    return redirect(url_for(".authentication_page", intent_id=intent_id), code=303)


def init_simulated_gateway(app: Flask) -> None:
    """Serve the page where the simulator may run: anywhere but production, and in production
    only with ALLOW_SIMULATED_GATEWAY (a staging shop)."""
    if app.config["ENV_NAME"] != PRODUCTION or app.config.get("ALLOW_SIMULATED_GATEWAY"):
        app.register_blueprint(simulated_gateway)
