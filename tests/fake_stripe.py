"""A tiny stand-in for api.stripe.com on 127.0.0.1, for the real ``stripe`` client.

It speaks just enough of Stripe's REST API (form-encoded requests, JSON
answers, Stripe's error envelope) for payment intents and refunds, keeps its
intents in memory and records every request. ``fail_with`` makes the next
requests answer with an HTTP error, like an outage would.

Refunds honour ``Idempotency-Key`` as Stripe does: a request repeating a key gets the first
answer back (``Idempotent-Replayed: true``), refunding nothing more; the same key with other
parameters is a 400 ``idempotency_error``. (Only refunds: the other fakes' callers never
repeat a key.) ``time_out_refunds(n)`` makes the next ``n`` refund requests a timeout after
the fact: the refund is made (and its answer kept under its key), but the connection closes
with no answer, as a read timeout leaves the client not knowing.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class FakeStripe:
    def __init__(self):
        self.intents: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.requests: list[tuple[str, str, dict, dict]] = []  # method, path, form, headers
        self.fail_status: int | None = None
        self.refund_answers: dict[str, tuple[dict, int, dict]] = {}  # idempotency key -> form, answer
        self.refund_timeouts = 0
        self.answer_delay = 0.0  # seconds every answer waits (a hung Stripe)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll: shutdown() waits up to one interval, and every Stripe test stops a server.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_with(self, status: int | None) -> None:
        self.fail_status = status

    def time_out_refunds(self, times: int) -> None:
        self.refund_timeouts = times

    def hang(self, seconds: float) -> None:
        """Answer every request only after ``seconds`` (0: at once again)."""
        self.answer_delay = seconds

    def paths(self, method: str | None = None) -> list[str]:
        return [path for m, path, _, _ in self.requests if method in (None, m)]

    # --- the API ------------------------------------------------------------------------

    def route(self, method: str, path: str, form: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if parts[:2] == ["v1", "payment_intents"]:
            if method == "POST" and len(parts) == 2:
                return self.create_intent(form)
            intent = self.intents.get(parts[2]) if len(parts) > 2 else None
            if intent is None:
                return 404, _error("invalid_request_error", "No such payment_intent", "resource_missing")
            if method == "GET" and len(parts) == 3:
                return 200, intent
            if method == "POST" and parts[3:] == ["confirm"]:
                return self.confirm(intent, form.get("payment_method", ""), form.get("return_url"))
            if method == "POST" and parts[3:] == ["cancel"]:
                if intent["status"] in ("canceled", "succeeded"):
                    # As Stripe answers it: only an open intent can be cancelled.
                    return 400, _error("invalid_request_error",
                                       f"This PaymentIntent's status is {intent['status']}.",
                                       "payment_intent_unexpected_state")
                intent["status"] = "canceled"
                return 200, intent
        if parts == ["v1", "refunds"] and method == "POST":
            intent = self.intents.get(form.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return 400, _error("invalid_request_error", "This PaymentIntent has no charge to refund")
            amount = int(form.get("amount") or intent["amount"])
            refund = {"id": f"re_{secrets.token_hex(8)}", "object": "refund", "amount": amount,
                      "payment_intent": intent["id"], "status": "succeeded"}
            self.refunds.append(refund)
            return 200, refund
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method} {path})")

    def create_intent(self, form: dict) -> tuple[int, dict]:
        intent_id = f"pi_{secrets.token_hex(10)}"
        metadata = {key[len("metadata["):-1]: value for key, value in form.items()
                    if key.startswith("metadata[")}
        intent = {
            "id": intent_id, "object": "payment_intent", "amount": int(form["amount"]),
            "currency": form["currency"], "status": "requires_payment_method",
            "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
            "metadata": metadata, "last_payment_error": None,
        }
        self.intents[intent_id] = intent
        return 200, intent

    def authenticate(self, intent_id: str, *, approve: bool) -> None:
        """The customer's answer on Stripe's 3-D Secure page (which this fake does not serve)."""
        with self._lock:
            intent = self.intents[intent_id]
            intent["next_action"] = None
            if approve:
                intent["status"] = "succeeded"
            else:
                intent["status"] = "requires_payment_method"
                intent["last_payment_error"] = {
                    "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication."}

    def confirm(self, intent: dict, payment_method: str, return_url: str | None = None) -> tuple[int, dict]:
        if payment_method in ("pm_card_threeDSecure2Required", "pm_card_authenticationRequired"):
            # As Stripe answers a card that needs 3-D Secure when given a return_url.
            intent["status"] = "requires_action"
            intent["next_action"] = {"type": "redirect_to_url", "redirect_to_url": {
                "url": f"{self.url}/3ds/{intent['id']}", "return_url": return_url}}
            return 200, intent
        if payment_method == "pm_does_not_exist":
            error = _error("invalid_request_error", f"No such PaymentMethod: '{payment_method}'",
                           "resource_missing")
            error["error"]["param"] = "payment_method"
            return 400, error
        if payment_method == "pm_card_chargeDeclined":
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": "card_declined", "message": "Your card was declined."}
            error = _error("card_error", "Your card was declined.", "card_declined")
            error["error"]["payment_intent"] = intent
            return 402, error
        intent["status"] = "succeeded"
        intent["last_payment_error"] = None
        return 200, intent

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = {key: values[-1] for key, values in parse_qs(raw).items()}
                key = self.headers.get("Idempotency-Key")
                refunding = method == "POST" and self.path.split("?")[0] == "/v1/refunds"
                replayed = time_out = False
                with fake._lock:
                    fake.requests.append((method, self.path, form, dict(self.headers)))
                    if fake.fail_status is not None:
                        status, body = fake.fail_status, _error("api_error", "Something went wrong")
                    elif refunding and key and key in fake.refund_answers:
                        first_form, status, body = fake.refund_answers[key]
                        replayed = True
                        if first_form != form:
                            status, body = 400, _error(
                                "idempotency_error", "Keys for idempotent requests can only be used with "
                                "the same parameters they were first used with.")
                    else:
                        status, body = fake.route(method, self.path.split("?")[0], form)
                        if refunding and key:
                            fake.refund_answers[key] = (form, status, body)
                    if refunding and fake.refund_timeouts > 0:
                        fake.refund_timeouts -= 1
                        time_out = True
                if fake.answer_delay:
                    time.sleep(fake.answer_delay)
                if time_out:
                    # Done, but the answer never arrives: the client's read ends with no response.
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                if replayed:
                    self.send_header("Idempotent-Replayed", "true")
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):  # noqa: N802 - http.server's naming
                self._serve("GET")

            def do_POST(self):  # noqa: N802
                self._serve("POST")

            def log_message(self, *args):
                pass

        return Handler


def _error(kind: str, message: str, code: str | None = None) -> dict:
    error = {"type": kind, "message": message}
    if code:
        error["code"] = code
    return {"error": error}
