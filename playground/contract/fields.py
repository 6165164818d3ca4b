"""Building blocks of the request models, and ``parse``: a body validated against a model, or one Problem.

Sampling fields take their bounds and meaning from ``inference.types.RANGES``; pydantic's refusals are translated
into the error vocabulary here, once, with the same message RANGES writes (so a range refused by the Playground's
form, by SamplingParams or by a dialect reads the same).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.json_schema import JsonDict

from inference.types import MAX_STOP_SEQUENCES, RANGES, SPEECH_SPEED, InvalidParameterError, Range, check_stop
from playground.contract.errors import Problem

EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "int_parsing": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}
RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
# Every range a field may point at with json_schema_extra {"x-range": name}.
RANGE_TABLE: dict[str, Range] = {**RANGES, SPEECH_SPEED.name: SPEECH_SPEED}


class Body(BaseModel):
    """A request body: unknown fields are refused, JSON types are not coerced (no "0.5" for 0.5)."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _integral(value: Any) -> Any:
    """5.0 is the integer 5 (JSON does not tell them apart); 5.5 stays a float and is refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sampling(name: str, *, extra: str = "", alias_of: str | None = None) -> Any:
    """A sampling field with the range and meaning RANGES gives it (``alias_of``: a dialect's other name)."""
    range_ = RANGE_TABLE[alias_of or name]
    high = "the model's context" if range_.high is None else None
    accepted = f"{range_.text()}, at most {high}" if high else range_.text()
    description = f"{range_.description} {accepted[0].upper()}{accepted[1:]}.{' ' + extra if extra else ''}"
    return Field(
        default=None,
        description=description,
        json_schema_extra={"x-range": range_.name},
        gt=range_.low if range_.low_open else None,
        ge=None if range_.low_open else range_.low,
        le=range_.high,
    )


# Integers arrive as JSON numbers; sampling integers accept 5.0.
SamplingInt = Annotated[int | None, BeforeValidator(_integral)]


def stop_sequences(value: Any, param: str = "stop") -> list[str] | None:
    """A string or a list of strings, checked by inference.types.check_stop."""
    if value is None:
        return None
    if not isinstance(value, str) and not (isinstance(value, list) and all(isinstance(s, str) for s in value)):
        raise Problem("invalid_type", f"{param} must be a string or a list of strings", param=param)
    try:
        return list(check_stop(value, field=param))
    except InvalidParameterError as exc:
        raise Problem("invalid_parameter", str(exc), param=param) from None


def only(value: Any, allowed: tuple[Any, ...], param: str, why: str) -> None:
    """A field we accept at its neutral values only (e.g. n: 1): anything else is unsupported."""
    if value is not None and (isinstance(value, bool) != isinstance(allowed[0], bool) or value not in allowed):
        raise Problem("unsupported_parameter", f"{param} must be {why}", param=param)


STOP_SCHEMA: JsonDict = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": MAX_STOP_SEQUENCES},
        {"type": "null"},
    ],
    "description": f"Up to {MAX_STOP_SEQUENCES} sequences; generation stops when one appears.",
}


UNION_TAGS = {"str", "int", "float", "bool", "list", "dict", "none", "json-or-python"}


def _is_union_tag(part: str) -> bool:
    """pydantic names the member of a union it tried in the location (e.g. 'str', 'list[TextPart]')."""
    return part in UNION_TAGS or "[" in part or part[:1].isupper()


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def json_parse(raw: bytes | str) -> Any:
    """JSON text as Python values, or Problem("invalid_json"): malformed, NaN/Infinity, or nested too deeply
    for the parser (a body or frame of 100,000 "[" is refused, not a crash)."""
    try:
        return json.loads(raw or b"null", parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem("invalid_json", f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise Problem("invalid_json", "the body is not valid JSON: it is nested too deeply") from None


def path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """A pydantic location as the field path clients know: messages[0].content, parameters.top_k."""
    out = prefix
    for part in loc:
        if isinstance(part, str) and _is_union_tag(part):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _range_field(model: type[BaseModel], loc: tuple[int | str, ...]) -> str | None:
    """The RANGES entry behind the field at `loc`, following nested models."""
    current: Any = model
    name: str | None = None
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        name = extra.get("x-range") if isinstance(extra.get("x-range"), str) else None  # type: ignore[assignment]
        current = next(
            (
                a
                for a in (info.annotation, *get_args(info.annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            info.annotation,
        )
    return name


def problem_from(
    error: Mapping[str, Any], model: type[BaseModel], where: str, prefix: str = "", alternatives: tuple[str, ...] = ()
) -> Problem:
    """One pydantic error as the Problem the vocabulary gives it (`alternatives`: the error kinds of the other
    members of a union the value failed, so the message names every accepted type)."""
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    param = path(loc, prefix)
    loc = tuple(part for part in loc if not (isinstance(part, str) and _is_union_tag(part)))
    if kind == "missing":
        return Problem("missing_required_parameter", f"{param} is required", param=param)
    if kind == "extra_forbidden":
        return Problem("unknown_parameter", f"unknown parameter {param!r} for {where}", param=param)
    if kind in RANGE_ERRORS:
        range_name = _range_field(model, loc)
        if range_name is not None:
            try:
                RANGE_TABLE[range_name].check(value, field=param)
            except InvalidParameterError as exc:
                return Problem("invalid_parameter", str(exc), param=param)
    if kind in EXPECTED:
        expected = " or ".join(dict.fromkeys(EXPECTED[k] for k in alternatives if k in EXPECTED)) or EXPECTED[kind]
        return Problem("invalid_type", f"{param} must be {expected} (got {_shown(value)})", param=param)
    limit = error.get("ctx", {})
    if kind in ("too_short", "string_too_short") and limit.get("min_length") == 1:
        return Problem("invalid_parameter", f"{param} must not be empty", param=param)
    if kind == "too_long":
        return Problem(
            "invalid_parameter",
            f"{param} has {limit.get('actual_length')} items; the limit is {limit.get('max_length')}",
            param=param,
        )
    if kind == "string_too_long":
        return Problem(
            "invalid_parameter",
            f"{param} is {len(value or '')} characters; the limit is {limit.get('max_length')}",
            param=param,
        )
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return Problem("invalid_parameter", f"{param} must be {expected} (got {_shown(value)})", param=param)
    message = str(error.get("msg", "is not valid"))
    return Problem("invalid_parameter", f"{param}: {message[0].lower()}{message[1:]}", param=param)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse[M: BaseModel](model: type[M], data: Any, *, where: str, prefix: str = "") -> M:
    """`data` validated against `model`; the first refusal raised as a Problem naming its field."""
    if not isinstance(data, dict):
        raise Problem("invalid_json", f"the body of {where} must be a JSON object", param=prefix or None)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # A value that fails every member of a union: report the deepest failure (content[0].type), or name
        # every accepted type when they all fail at the same place.
        first = path(tuple(errors[0]["loc"]))
        related = [e for e in errors if path(tuple(e["loc"])).startswith(first)]
        chosen = max(related, key=lambda e: len(path(tuple(e["loc"]))))
        kinds = tuple(e["type"] for e in related if path(tuple(e["loc"])) == path(tuple(chosen["loc"])))
        raise problem_from(chosen, model, where, prefix, kinds) from None
