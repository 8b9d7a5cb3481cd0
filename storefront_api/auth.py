"""Sign-up and sign-in: both answer with a bearer token and merge a guest cart."""

from __future__ import annotations

import hashlib

from flask import current_app, request
from flask_limiter.util import get_remote_address
from pydantic import EmailStr, Field

from ecom.commerce.cart import merge_guest_cart
from ecom.extensions import limiter
from ecom.identity.models import User
from ecom.identity.services import authenticate, create_user
from storefront_api import api
from storefront_api.account import UserOut
from storefront_api.openapi import HeaderParam, endpoint, small_json_object
from storefront_api.schemas import ApiModel, RequestBody
from storefront_api.security import TOKEN_TYPE, issue_access_token

CART_TOKEN_HEADER = HeaderParam("X-Cart-Token", "A guest cart to merge into the shopper's cart.", 64)


class SignupIn(RequestBody):
    email: EmailStr = Field(max_length=254)
    password: str = Field(min_length=8, max_length=72)
    full_name: str = Field("", max_length=200)


class LoginIn(RequestBody):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(ApiModel):
    access_token: str
    token_type: str = TOKEN_TYPE
    expires_in: int
    user: UserOut


def _token_answer(user: User) -> TokenOut:
    merge_guest_cart(request.headers.get("X-Cart-Token"), user)
    token, lifetime = issue_access_token(user)
    return TokenOut(access_token=token, expires_in=lifetime, user=UserOut.model_validate(user))


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _signup_limit() -> str:
    return current_app.config["SIGNUP_RATE_LIMIT"]


def _login_email_key() -> str:
    # Never parses a large body: an oversized or unsized one shares the key of "no email",
    # so padding a sign-in to dodge its email's limit only meets a tighter, shared one.
    data = small_json_object()
    email = data.get("email") if data is not None else None
    normalised = email.strip().lower()[:254] if isinstance(email, str) else ""
    # Hashed, so the limiter's storage (Redis) holds no email addresses.
    return "login-email:" + hashlib.sha256(normalised.encode("utf-8", "surrogatepass")).hexdigest()


def _sign_in_failed(response) -> bool:
    # Only failed sign-ins count, so a shopper who logs in often is never locked out.
    return response.status_code == 401


@api.post("/auth/signup")
@limiter.limit(_signup_limit, key_func=get_remote_address, scope="signup-ip")
@endpoint(body=SignupIn, response=TokenOut, status=201, tags=["auth"], errors=[409, 429],
          headers=[CART_TOKEN_HEADER])
def signup(body: SignupIn):
    """Create a customer account and sign in."""
    user = create_user(body.email, body.password, full_name=body.full_name)
    return _token_answer(user)


@api.post("/auth/login")
@limiter.limit(_login_limit, key_func=get_remote_address, deduct_when=_sign_in_failed, scope="login-ip")
@limiter.limit(_login_limit, key_func=_login_email_key, deduct_when=_sign_in_failed, scope="login-email")
@endpoint(body=LoginIn, response=TokenOut, tags=["auth"], errors=[401, 429], headers=[CART_TOKEN_HEADER])
def login(body: LoginIn):
    """Sign in with email and password."""
    user = authenticate(body.email, body.password)
    return _token_answer(user)
