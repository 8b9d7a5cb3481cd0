"""The signed-in shopper's profile, password and address book."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ecom.errors import AuthenticationFailed
from ecom.identity import services
from storefront_api import api
from storefront_api.openapi import endpoint
from storefront_api.price_schemas import KnownCountry
from storefront_api.schemas import ApiModel, ItemList, RequestBody, UtcDateTime
from storefront_api.security import current_user, sign_in_throttle, throttled_response


class UserOut(ApiModel):
    id: int
    email: str
    full_name: str
    role: str
    created_at: UtcDateTime


class ProfilePatch(RequestBody):
    full_name: str = Field(max_length=200)


class PasswordChangeIn(RequestBody):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=72)


class SavedAddressIn(RequestBody):
    address_type: Literal["shipping", "billing"]
    full_name: str = Field(min_length=1, max_length=200)
    street: str = Field(min_length=1, max_length=300)
    city: str = Field(min_length=1, max_length=120)
    state: str = Field("", max_length=120)
    postal_code: str = Field(min_length=1, max_length=20)
    country: KnownCountry
    phone: str | None = Field(None, max_length=40)
    is_default: bool = False


class SavedAddressPatch(RequestBody):
    address_type: Literal["shipping", "billing"] | None = None
    full_name: str | None = Field(None, min_length=1, max_length=200)
    street: str | None = Field(None, min_length=1, max_length=300)
    city: str | None = Field(None, min_length=1, max_length=120)
    state: str | None = Field(None, max_length=120)
    postal_code: str | None = Field(None, min_length=1, max_length=20)
    country: KnownCountry | None = None
    phone: str | None = Field(None, max_length=40)
    is_default: bool | None = None


class SavedAddressOut(ApiModel):
    id: int
    address_type: str
    full_name: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str
    phone: str | None
    is_default: bool
    created_at: UtcDateTime


@api.get("/me")
@endpoint(response=UserOut, auth="required", tags=["account"])
def get_me():
    """The signed-in user."""
    return current_user()


@api.patch("/me")
@endpoint(body=ProfilePatch, response=UserOut, auth="required", tags=["account"])
def update_me(body: ProfilePatch):
    """Change the signed-in user's name."""
    return services.update_profile(current_user(), full_name=body.full_name)


@api.post("/me/password")
@endpoint(body=PasswordChangeIn, status=204, auth="required", tags=["account"], errors=[429])
def change_password(body: PasswordChangeIn):
    """Change the password (the current one is required).

    Every token issued so far stops working, this one included: sign in again. A
    wrong current password counts as a failed sign-in, so a stolen token cannot
    be used to guess the password (429 once throttled).
    """
    user = current_user()
    throttle = sign_in_throttle(user.email)
    refused = throttled_response(throttle)
    if refused is not None:
        return refused
    try:
        services.change_password(user, body.current_password, body.new_password)
    except AuthenticationFailed:
        throttle.record_failure()
        raise


@api.get("/me/addresses")
@endpoint(response=ItemList[SavedAddressOut], auth="required", tags=["account"])
def list_addresses():
    """The signed-in user's addresses."""
    return {"items": services.list_addresses(current_user())}


@api.post("/me/addresses")
@endpoint(body=SavedAddressIn, response=SavedAddressOut, status=201, auth="required", tags=["account"])
def create_address(body: SavedAddressIn):
    """Add an address; ``is_default`` replaces the type's previous default."""
    return services.add_address(current_user(), **body.model_dump())


@api.get("/me/addresses/<int:address_id>")
@endpoint(response=SavedAddressOut, auth="required", tags=["account"])
def get_address(address_id: int):
    """One of the signed-in user's addresses."""
    return services.get_address(current_user(), address_id)


@api.patch("/me/addresses/<int:address_id>")
@endpoint(body=SavedAddressPatch, response=SavedAddressOut, auth="required", tags=["account"])
def update_address(address_id: int, body: SavedAddressPatch):
    """Change an address."""
    address = services.get_address(current_user(), address_id)
    # Only ``phone`` may be cleared with null; null elsewhere means "leave as is".
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None or k == "phone"}
    return services.update_address(address, **changes)


@api.delete("/me/addresses/<int:address_id>")
@endpoint(status=204, auth="required", tags=["account"])
def delete_address(address_id: int):
    """Delete an address."""
    services.delete_address(services.get_address(current_user(), address_id))
