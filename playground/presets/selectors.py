"""Reading presets and remembered settings: always through the owner."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from playground.presets.models import LastSettings, Preset


def preset_list(*, user: AbstractBaseUser) -> QuerySet[Preset]:
    """The user's presets, by name."""
    return Preset.objects.filter(user=user)


def last_settings_get(*, user: AbstractBaseUser | AnonymousUser, model_id: str) -> LastSettings | None:
    """The settings of the user's latest reply from this model; None for none (or an anonymous visitor)."""
    if not user.is_authenticated:
        return None
    return LastSettings.objects.filter(user=user, model_id=model_id).first()
