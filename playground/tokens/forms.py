"""The create-token form: a label and an expiry (a number of days, never, or a date that is not in the past)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
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
