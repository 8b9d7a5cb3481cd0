"""The dashboard at /admin/, and signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from limits import parse
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from admin.dashboard import dashboard_context
from admin.security import Area, access_of, refuse
from ecom.errors import AuthenticationFailed, PermissionDenied
from ecom.extensions import limiter
from ecom.identity.models import User
from ecom.identity.services import authenticate
from ecom.runtime import settings
from ecom.unit_of_work import unit_of_work

PUBLIC_VIEWS = frozenset({"login_view", "logout_view"})
WRONG_CREDENTIALS = "Wrong email or password."
STAFF_ONLY = "The back office is for staff only."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    # Only local paths under /admin: never an open redirect.
    if target and target.startswith("/admin") and not urlsplit(target).netloc:
        return target
    return url_for("admin.index")


class _FailedSignIns:
    """Counts failed sign-ins per client address in the app's rate-limit storage."""

    key = "admin-login-failures"

    def _limit(self):
        return parse(settings()["LOGIN_RATE_LIMIT"])

    def _enabled(self) -> bool:
        return settings()["RATELIMIT_ENABLED"] and limiter.enabled

    def blocked(self) -> bool:
        return self._enabled() and not limiter.limiter.test(self._limit(), self.key, request.remote_addr)

    def record(self) -> None:
        if self._enabled():
            limiter.limiter.hit(self._limit(), self.key, request.remote_addr)


failed_sign_ins = _FailedSignIns()


def _authenticate_staff(email: str, password: str) -> User:
    """The staff user with these credentials, their sign-in recorded and committed.

    Raises AuthenticationFailed (identity's rule: unknown emails take as long as
    wrong passwords) and PermissionDenied for a customer, whose sign-in is then
    rolled back.
    """
    with unit_of_work():
        user = authenticate(email, password)
        if not user.is_staff:
            raise PermissionDenied(STAFF_ONLY)
    return user


class DashboardView(AdminIndexView):
    def is_accessible(self) -> bool:
        return access_of(Area.DASHBOARD) is not None

    def inaccessible_callback(self, name, **kwargs):
        return refuse()

    def _handle_view(self, name, **kwargs):
        if name in PUBLIC_VIEWS:
            return None
        return super()._handle_view(name, **kwargs)

    @expose("/")
    def index(self):
        return self.render("admin/dashboard.html", **dashboard_context())

    @expose("/login", methods=["GET", "POST"])
    def login_view(self):
        form = LoginForm()
        if request.method == "POST":
            if failed_sign_ins.blocked():
                return self.render("admin/login.html", form=form, error="Too many failed sign-ins. "
                                   "Please wait a few minutes."), 429
            if form.validate_on_submit():
                try:
                    user = _authenticate_staff(form.email.data, form.password.data)
                except PermissionDenied as exc:
                    return self.render("admin/login.html", form=form, error=exc.message), 403
                except AuthenticationFailed:
                    pass  # unknown email, wrong password, deactivated: one answer for all
                else:
                    login_user(user)
                    return redirect(_safe_next(request.args.get("next")))
            failed_sign_ins.record()
            return self.render("admin/login.html", form=form, error=WRONG_CREDENTIALS), 401
        if current_user.is_authenticated and current_user.is_staff:
            return redirect(url_for("admin.index"))
        return self.render("admin/login.html", form=form, error=None)

    @expose("/logout", methods=["GET", "POST"])
    def logout_view(self):
        logout_user()
        flash("Signed out.", "info")
        return redirect(url_for("admin.login_view"))
