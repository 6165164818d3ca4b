from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "playground.accounts"
    label = "accounts"

    def ready(self) -> None:
        from django.contrib import admin

        from playground.accounts.forms import AdminLoginForm

        # The admin's login counts failures and honours bans like the site's (playground/tokens/throttle.py).
        admin.site.login_form = AdminLoginForm
