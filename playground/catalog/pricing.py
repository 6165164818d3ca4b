"""How a model's catalog prices read on its card."""

from __future__ import annotations

from inference import ModelSpec


def _money(value: float) -> str:
    return f"${value:,.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"


def price_lines(spec: ModelSpec) -> list[tuple[str, str]]:
    """(what, price) pairs, e.g. ("Input tokens", "$0.02 / 1M")."""
    p = spec.prices
    lines = []
    if "input_per_million_tokens" in p:
        lines.append(("Input tokens", f"{_money(p['input_per_million_tokens'])} / 1M"))
    if "output_per_million_tokens" in p:
        lines.append(("Output tokens", f"{_money(p['output_per_million_tokens'])} / 1M"))
    if "per_audio_minute" in p:
        lines.append(("Audio", f"{_money(p['per_audio_minute'])} / minute"))
    if "per_million_characters" in p:
        lines.append(("Characters", f"{_money(p['per_million_characters'])} / 1M"))
    return lines


def price_summary(spec: ModelSpec) -> str:
    return " · ".join(f"{price} {what.lower()}" for what, price in price_lines(spec)) or "free"
