"""The create-token form: a label and an expiry (a number of days, never, or a date that is not in the past); and
the limits form: a token's rate limits and spending caps."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.utils import timezone

from playground.tokens.models import ApiToken

EXPIRY_CHOICES = [
    ("30", "In 30 days"),
    ("7", "In 7 days"),
    ("90", "In 90 days"),
    ("never", "Never"),
    ("date", "On a date…"),
]
MAX_EXPIRY_DAYS = 3650  # a date further out is almost certainly a typo


def expiry_after_days(days: int) -> datetime:
    return timezone.now() + timedelta(days=days)


def expiry_on_date(day: date) -> datetime:
    """A token valid "until" a date works through that whole day (in the site's time zone)."""
    return timezone.make_aware(datetime.combine(day, time.max))


class TokenCreateForm(forms.Form):
    label = forms.CharField(
        max_length=ApiToken._meta.get_field("label").max_length,
        help_text="What the token is for, so you can tell it apart later (e.g. “laptop scripts”).",
    )
    expires = forms.ChoiceField(label="Expires", choices=EXPIRY_CHOICES, initial="30")
    expires_on = forms.DateField(
        label="Expiry date",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Only with “On a date…”: the token works until the end of this day.",
    )

    def clean_label(self) -> str:
        # Runs of spaces (and stray newlines pasted in) collapse, so the list stays readable.
        return " ".join(self.cleaned_data["label"].split())

    def clean_expires_on(self) -> date | None:
        day = self.cleaned_data["expires_on"]
        if day is None:
            return None
        today = timezone.localdate()
        if day < today:
            raise forms.ValidationError("The expiry date is in the past.")
        if day > today + timedelta(days=MAX_EXPIRY_DAYS):
            raise forms.ValidationError(f"The expiry date must be within {MAX_EXPIRY_DAYS // 365} years.")
        return day

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        choice = data.get("expires")
        if choice == "date" and data.get("expires_on") is None and "expires_on" not in self.errors:
            self.add_error("expires_on", "Pick the date the token stops working.")
        return data

    def expires_at(self) -> datetime | None:
        """The moment the token stops working (None: never). Call after is_valid()."""
        choice = self.cleaned_data["expires"]
        if choice == "never":
            return None
        if choice == "date":
            return expiry_on_date(self.cleaned_data["expires_on"])
        return expiry_after_days(int(choice))


LIMIT_MESSAGE = "Must be at least 1; leave it empty for no limit."
CAP_MESSAGE = "Must be more than 0; leave it empty for no cap."
MAX_PER_MINUTE = 2_000_000_000  # what the column holds on every database
LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "spend_per_day", "spend_per_month")


class TokenLimitsForm(forms.Form):
    """A token's rate limits and spending caps; every field may be left empty for no limit."""

    requests_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PER_MINUTE,
        error_messages={"min_value": LIMIT_MESSAGE},
        help_text="Requests in any 60 seconds. Empty: no limit.",
    )
    tokens_per_minute = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PER_MINUTE,
        error_messages={"min_value": LIMIT_MESSAGE},
        help_text="Prompt plus completion tokens of the requests finished in the last 60 seconds. A request is "
        "let in while the count is under the limit and counted in full when it ends. Empty: no limit.",
    )
    spend_per_day = forms.DecimalField(
        label="Spend per day (USD)",
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=14,
        decimal_places=6,
        error_messages={"min_value": CAP_MESSAGE},
        help_text="Cost of the token's requests since midnight UTC, as priced in your usage. Empty: no cap.",
    )
    spend_per_month = forms.DecimalField(
        label="Spend per month (USD)",
        required=False,
        min_value=Decimal("0.000001"),
        max_digits=14,
        decimal_places=6,
        error_messages={"min_value": CAP_MESSAGE},
        help_text="Cost since the first of the month, UTC. Empty: no cap.",
    )

    @classmethod
    def for_token(cls, token: ApiToken) -> TokenLimitsForm:
        return cls(initial={name: getattr(token, name) for name in LIMIT_FIELDS})

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        day, month = data.get("spend_per_day"), data.get("spend_per_month")
        if day is not None and month is not None and day > month:
            self.add_error("spend_per_day", "The daily cap is more than the monthly cap, so it would never apply.")
        return data
