from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseServerError
from django.shortcuts import redirect, render
from django.template import loader
from django.views.decorators.http import require_http_methods

from playground.accounts.forms import LoginForm, SignupForm
from playground.tokens.throttle import request_address, signup_record, signup_wait

logger = logging.getLogger(__name__)
# What a 500 says when even templates/500.html cannot be rendered.
PLAIN_500 = (
    "<!doctype html><title>Server error</title><h1>Something went wrong on our side</h1>"
    '<p>Try again in a moment. <a href="/">Back to the models</a></p>'
)


class LoginView(auth_views.LoginView):
    """Django's login view with the failed-authentication ban (LoginForm): a banned address gets 403."""

    authentication_form = LoginForm
    template_name = "accounts/login.html"

    def form_invalid(self, form: Form) -> HttpResponse:
        response = super().form_invalid(form)
        if banned_for := getattr(form, "banned_for", 0):
            response.status_code = 403
            response["Retry-After"] = str(banned_for)
        return response


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("catalog")
    if settings.PLAYGROUND_SIGNUP == "closed":
        return render(request, "accounts/signup_closed.html", status=403)
    form = SignupForm(request.POST or None)
    if request.method == "POST":
        address = request_address(request)
        if wait := signup_wait(address=address):  # PLAYGROUND_SIGNUP_PER_HOUR accounts from here already
            context = {"form": SignupForm(), "wait_minutes": (wait + 59) // 60}
            response = render(request, "accounts/signup.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        if form.is_valid():
            user = form.save()
            signup_record(address=address)
            login(request, user)
            return redirect("catalog")
    return render(request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200)


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page (handler500): the site's layout, rendered without the request, so that neither the database
    nor the session nor a context processor can fail it again; plain HTML if even the template fails."""
    try:
        body = loader.get_template("500.html").render()
    except Exception:
        logger.exception("the 500 page could not be rendered")
        body = PLAIN_500
    return HttpResponseServerError(body)
