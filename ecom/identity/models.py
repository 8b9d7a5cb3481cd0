from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ecom.db import TimestampMixin, one_of, utcnow
from ecom.extensions import db


class Role(StrEnum):
    ADMIN = "admin"
    MERCHANDISER = "merchandiser"
    WAREHOUSE = "warehouse"
    CUSTOMER = "customer"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MERCHANDISER, Role.WAREHOUSE})


class AddressType(StrEnum):
    SHIPPING = "shipping"
    BILLING = "billing"


class User(UserMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role),
        # Emails are stored lower-cased, which makes the plain unique index
        # case-insensitive; the check keeps writers around the services honest.
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        # Back-office lists (migration 0013): each ends in the id, so a page is read off it.
        Index("ix_users_created_id", "created_at", "id"),
        Index("ix_users_role_created_id", "role", "created_at", "id"),
        Index("ix_users_role_last_login_id", "role", "last_login_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20), default=Role.CUSTOMER)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    last_login_at: Mapped[datetime | None] = mapped_column(db.DateTime(timezone=True))
    # Bumped whenever the user's sign-ins must end (sign-out, password change or reset,
    # deactivation): back-office sessions and API tokens carry the value they were issued
    # with, and a stale one is refused (identity.services.end_sessions).
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # IANA name ("Europe/Berlin"): the back office shows this user's dates in it; UTC when unset.
    time_zone: Mapped[str | None] = mapped_column(String(64))

    addresses: Mapped[list[Address]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="Address.id"
    )

    def get_id(self) -> str:
        # What Flask-Login keeps in the session cookie: the id and the session version, so a
        # cookie stops working once the version moves on (identity.services.user_for_session).
        return f"{self.id}:{self.session_version or 0}"

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"

    def __str__(self) -> str:
        return self.email


class CustomerNote(db.Model):
    """A staff note on a customer's page (who wrote it, when); never shown to the customer."""

    __tablename__ = "customer_notes"
    __table_args__ = (CheckConstraint("length(body) > 0", name="body_not_empty"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    author: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(db.DateTime(timezone=True), default=utcnow)


class Address(TimestampMixin, db.Model):
    __tablename__ = "addresses"
    __table_args__ = (
        one_of("address_type", AddressType),
        CheckConstraint("length(country) = 2", name="country_alpha2"),
        # At most one default per user and type.
        Index(
            "uq_addresses_one_default",
            "user_id",
            "address_type",
            unique=True,
            postgresql_where=text("is_default"),
            sqlite_where=text("is_default"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    address_type: Mapped[str] = mapped_column(String(20), default=AddressType.SHIPPING)
    full_name: Mapped[str] = mapped_column(String(200))
    street: Mapped[str] = mapped_column(String(300))
    city: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(120), default="")
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    phone: Mapped[str | None] = mapped_column(String(40))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))

    user: Mapped[User] = relationship(back_populates="addresses")

    def snapshot(self) -> dict:
        """The address as frozen into an order."""
        return {
            "full_name": self.full_name,
            "street": self.street,
            "city": self.city,
            "state": self.state,
            "postal_code": self.postal_code,
            "country": self.country,
            "phone": self.phone,
        }
