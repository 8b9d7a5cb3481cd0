"""Signing in without a terminal: the set-password page a staff invitation or a reset email
links to, and the "forgot your password" form. Public pages of the back office (no session)."""

from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_admin import expose
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from ecom.errors import ValidationFailed
from ecom.identity.invitations import Purpose, request_password_reset, set_password_with_token, user_for_token
from ecom.identity.throttle import SignInThrottle
from ecom.unit_of_work import unit_of_work

PUBLIC_PASSWORD_VIEWS = frozenset({"set_password_view", "forgot_password_view"})
RESET_SENT = ("If that address belongs to a staff account, we have emailed it a link to choose a "
              "new password. The link works once, for an hour.")


class NewPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField("Repeat it", validators=[EqualTo("password", message="The passwords differ.")])


class ForgotForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])


def set_password_link(purpose: Purpose):
    """token -> the absolute URL of the set-password page (inside a request)."""
    return lambda token: url_for("admin.set_password_view", purpose=str(purpose), token=token, _external=True)


class PasswordPagesMixin:
    """Mixed into the dashboard view (the back office's index): its public pages."""

    @expose("/password/<purpose>/<token>", methods=["GET", "POST"])
    def set_password_view(self, purpose: str, token: str):
        try:
            purpose = Purpose(purpose)
        except ValueError:
            return self.render("admin/set_password.html", form=None,
                               error="This link is not one of ours."), 404
        form = NewPasswordForm()
        try:
            user = user_for_token(token, purpose)
        except ValidationFailed as exc:
            return self.render("admin/set_password.html", form=None, error=exc.message), 410
        if form.validate_on_submit():
            try:
                with unit_of_work():
                    set_password_with_token(token, purpose, form.password.data)
            except ValidationFailed as exc:
                flash(exc.message, "error")
            else:
                flash("Your password is set. Sign in with it now.", "success")
                return redirect(url_for("admin.login_view"))
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return self.render("admin/set_password.html", form=form, error=None, user=user,
                           welcome=purpose == Purpose.INVITE)

    @expose("/me", methods=["GET", "POST"])
    def settings_view(self):
        """The signed-in user's own settings (their time zone)."""
        from flask_login import current_user

        from admin.security import refuse
        from ecom.identity.preferences import set_time_zone, time_zone_names

        if not getattr(current_user, "is_authenticated", False) or not current_user.is_staff:
            return refuse()
        if request.method == "POST":  # CSRF-checked by the app's CSRFProtect, like every form
            try:
                with unit_of_work():
                    set_time_zone(current_user._get_current_object(), request.form.get("time_zone"))
            except ValidationFailed as exc:
                flash(exc.message, "error")
            else:
                flash("Saved: dates are shown in " + (current_user.time_zone or "UTC") + ".", "success")
                return redirect(url_for("admin.settings_view"))
        return self.render("admin/my_settings.html", zones=time_zone_names(),
                           current=current_user.time_zone or "")

    @expose("/password/forgot", methods=["GET", "POST"])
    def forgot_password_view(self):
        form = ForgotForm()
        if request.method == "POST":
            # Counted like a failed sign-in: the form must not become a way to flood someone's mail.
            throttle = SignInThrottle(form.email.data or "", request.remote_addr or "")
            if throttle.wait_seconds():
                flash("Too many requests. Please wait a few minutes.", "error")
                return self.render("admin/forgot_password.html", form=form), 429
            if form.validate_on_submit():
                throttle.record_failure()
                with unit_of_work():
                    request_password_reset(form.email.data, link_for=set_password_link(Purpose.RESET))
                flash(RESET_SENT, "info")
                return redirect(url_for("admin.login_view"))
            flash("Enter the email address you sign in with.", "error")
        return self.render("admin/forgot_password.html", form=form)
