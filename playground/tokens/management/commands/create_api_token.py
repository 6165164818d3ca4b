"""Create an API token for an existing user and print it, alone, on stdout (for scripts: TOKEN=$(...))."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from playground.tokens.forms import MAX_EXPIRY_DAYS, expiry_after_days
from playground.tokens.models import ApiToken
from playground.tokens.services import token_create


class Command(BaseCommand):
    help = "Create an API token for an existing user. The token is printed once, alone, on stdout; it is not stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="username of an existing, active user")
        parser.add_argument("--label", required=True, help="what the token is for")
        parser.add_argument(
            "--expires-days",
            type=int,
            metavar="N",
            help=f"the token stops working after N days (1–{MAX_EXPIRY_DAYS}); default: never",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        username = opts["user"]
        label = " ".join(opts["label"].split())
        if not label:
            raise CommandError("--label cannot be blank")
        max_label = ApiToken._meta.get_field("label").max_length
        if len(label) > max_label:
            raise CommandError(f"--label is longer than {max_label} characters")
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"the user {username!r} is inactive; their tokens would not work")
        days = opts["expires_days"]
        if days is not None and not 1 <= days <= MAX_EXPIRY_DAYS:
            raise CommandError(f"--expires-days must be between 1 and {MAX_EXPIRY_DAYS}")
        token, raw = token_create(
            user=user, label=label, expires_at=expiry_after_days(days) if days is not None else None
        )
        self.stdout.write(raw)
        expiry = f"expires {token.expires_at:%Y-%m-%d %H:%M %Z}" if token.expires_at else "never expires"
        self.stderr.write(
            f"created token {token.prefix}… {label!r} for {username}; {expiry}. It will not be shown again."
        )
