"""The dashboard at /admin/, and signing in and out."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, request, url_for
from flask_admin import AdminIndexView, expose
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from admin.dashboard import dashboard_context
from admin.passwords import PUBLIC_PASSWORD_VIEWS, PasswordPagesMixin
from admin.security import Area, access_of, end_session, refuse, start_session
from ecom.errors import AuthenticationFailed
from ecom.identity.models import User
from ecom.identity.services import BAD_CREDENTIALS, authenticate, end_sessions
from ecom.identity.throttle import SignInThrottle
from ecom.unit_of_work import unit_of_work

PUBLIC_VIEWS = frozenset({"login_view", "logout_view", *PUBLIC_PASSWORD_VIEWS})
# One answer for an unknown email, a wrong password, a deactivated account and a customer's
# right password: anything else would tell a password guesser they found one.
WRONG_CREDENTIALS = "Wrong email or password."
TOO_MANY = "Too many failed sign-ins. Please wait a few minutes."


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    # Only local paths under /admin: never an open redirect.
    if target and target.startswith("/admin") and not urlsplit(target).netloc:
        return target
    return url_for("admin.index")


def _authenticate_staff(email: str, password: str) -> User:
    """The staff user with these credentials, their sign-in recorded and committed.

    Raises AuthenticationFailed for all causes alike (identity's rule: unknown
    emails take as long as wrong passwords), a customer's right password
    included, whose sign-in is then rolled back.
    """
    with unit_of_work():
        user = authenticate(email, password)
        if not user.is_staff:
            raise AuthenticationFailed(BAD_CREDENTIALS)
    return user


class DashboardView(PasswordPagesMixin, AdminIndexView):
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
        return self.render("admin/dashboard.html",
                           **dashboard_context(request.args.get("start"), request.args.get("end"),
                                               fresh=request.args.get("fresh") == "1"))

    @expose("/login", methods=["GET", "POST"])
    def login_view(self):
        form = LoginForm()
        if request.method == "POST":
            # Per email and address, per address, and per email from anywhere (identity's throttle).
            throttle = SignInThrottle(form.email.data or "", request.remote_addr or "")
            wait = throttle.wait_seconds()
            if wait:
                return (self.render("admin/login.html", form=form, error=TOO_MANY), 429,
                        {"Retry-After": str(wait)})
            if form.validate_on_submit():
                try:
                    user = _authenticate_staff(form.email.data, form.password.data)
                except AuthenticationFailed:
                    pass  # unknown email, wrong password, deactivated, customer: one answer for all
                else:
                    start_session(user)
                    return redirect(_safe_next(request.args.get("next")))
            throttle.record_failure()
            return self.render("admin/login.html", form=form, error=WRONG_CREDENTIALS), 401
        if current_user.is_authenticated and current_user.is_staff:
            return redirect(url_for("admin.index"))
        return self.render("admin/login.html", form=form, error=None)

    @expose("/logout", methods=["GET", "POST"])
    def logout_view(self):
        if current_user.is_authenticated:
            # Ends this session and every copy of its cookie (and the user's other sessions).
            with unit_of_work():
                end_sessions(current_user._get_current_object())
        end_session()
        flash("Signed out.", "info")
        return redirect(url_for("admin.login_view"))
