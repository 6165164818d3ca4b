"""Saving presets and remembering the settings last used."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser

from playground.catalog.forms import panel_params
from playground.presets.models import LastSettings, Preset


def preset_save(*, user: AbstractBaseUser, name: str, system_prompt: str, params: Mapping[str, Any]) -> Preset:
    """Save a preset under `name`; a preset of that name is replaced (saving again updates it)."""
    preset, _ = Preset.objects.update_or_create(
        user=user, name=name, defaults={"system_prompt": system_prompt, "params": panel_params(params)}
    )
    return preset


def preset_delete(*, preset: Preset) -> None:
    preset.delete()


def last_settings_remember(*, user_id: int, model_id: str, params: Mapping[str, Any], system_prompt: str) -> None:
    """Remember what produced the user's latest reply from this model (only the panel's fields of `params`)."""
    LastSettings.objects.update_or_create(
        user_id=user_id,
        model_id=model_id,
        defaults={"params": panel_params(params), "system_prompt": system_prompt},
    )
