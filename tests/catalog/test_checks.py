"""Missing weights are reported by a system check, not by a crash; a broken catalog is an error."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from playground.catalog.checks import check_catalog


@pytest.mark.django_db  # `check` also runs the model checks, which look at the database
def test_missing_weights_are_a_warning_naming_the_model(settings, tmp_path):
    extra = tmp_path / "extra.toml"
    extra.write_text('[[model]]\nid = "ghost"\ntask = "embeddings"\npath = "/nowhere/ghost.gguf"\n')
    settings.PLAYGROUND_CATALOG_FILES = [extra]
    (message,) = check_catalog()
    assert message.id == "catalog.W001" and "ghost" in message.msg and "/nowhere/ghost.gguf" in message.msg
    call_command("check")  # a warning does not stop the site


def test_invalid_catalog_is_an_error(settings, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[model]]\nid = "x"\ntask = "nope"\npath = "p"\n')
    settings.PLAYGROUND_CATALOG_FILES = [bad]
    (message,) = check_catalog()
    assert message.id == "catalog.E001" and "task must be one of" in message.msg


def test_repo_catalog_passes_once_prepared():
    assert check_catalog() == []
