"""Constrained decoding: GBNF grammars (llama.cpp's grammar language) that a reply must match.

`SamplingParams.grammar` carries the grammar's text; the engines build each request's own grammar state from it
(inference/text.py: `ConstrainedSampler`). This module makes and checks that text:

- `gbnf_from_json_schema(schema)`: a JSON Schema as GBNF, through llama-cpp-python's converter
  (`llama_cpp.llama_grammar.SchemaConverter`) with what it lacks added here: integer and number bounds, string
  lengths and array sizes as GBNF repetitions, JSON-safe string characters, constraints beside a list of types.
  A schema feature the grammar cannot enforce is refused (`InvalidRequestError` naming it) rather than ignored,
  so every complete reply validates against the schema.
- `JSON_OBJECT_GBNF`: any JSON object (OpenAI's `response_format` `json_object`).
- `check_gbnf(text)`: refuse a grammar llama.cpp would not parse, before any work is queued.
- `compiled(text)`: the checked grammar, cached.

Everything is cached (bounded) by its input text, so a repeated request converts and checks nothing again. Plain
Python: llama_cpp is imported inside the functions, so importing `inference` stays cheap. The API calls these on a
worker thread (a large schema takes milliseconds, not the event loop's time).
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import TYPE_CHECKING, Any

from inference.types import InvalidRequestError

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import LlamaGrammar

MAX_GRAMMAR_CHARS = 100_000  # a grammar's text; a converted schema is refused past it too
MAX_SCHEMA_CHARS = 100_000  # a JSON Schema, as JSON text
MAX_NESTING = 200  # parentheses inside each other: llama.cpp's parser recurses on them (20,000 crash it)
MAX_REPEAT = 1000  # {m,n} in a grammar; minLength, maxLength, minItems, maxItems in a schema
MAX_SCHEMA_DEPTH = 64  # subschemas inside each other
MAX_DIGITS = 16  # an integer's digits, as llama-cpp-python's converter allows

# One character inside a JSON string: anything but a quote, a backslash or a control character (json.loads
# refuses raw control characters; llama-cpp-python's converter allowed them), or an escape.
JSON_CHAR_GBNF = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})'

JSON_OBJECT_GBNF = r"""root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ( "," ws string ":" ws value )* )? "}" ws
array  ::= "[" ws ( value ( "," ws value )* )? "]" ws
string ::= "\"" char* "\"" ws
char   ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? ws
ws     ::= | " " | "\n" [ \t]{0,20}
"""
"""Any JSON object, nothing before it; whitespace between tokens is bounded so a model cannot run away in it."""

ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$comment",
        "$schema",
        "$id",
        "$anchor",
        "deprecated",
        "readOnly",
        "writeOnly",
        "discriminator",
        "nullable",
        "$defs",
        "definitions",
    }
)
# Keywords whose constraint the grammar cannot express (or llama-cpp-python's converter ignores): refused.
UNSUPPORTED = (
    "patternProperties",
    "propertyNames",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "minProperties",
    "maxProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contains",
    "minContains",
    "maxContains",
    "not",
    "if",
    "then",
    "else",
    "multipleOf",
    "$dynamicRef",
    "$recursiveRef",
)
TYPES = frozenset({"string", "number", "integer", "boolean", "null", "object", "array"})
BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
LENGTHS = ("minLength", "maxLength")
SIZES = ("minItems", "maxItems")
ENFORCED_FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})


# --- checking GBNF ---------------------------------------------------------------------------------------------


def check_gbnf(text: str, *, param: str | None = "grammar") -> None:
    """Refuse (`InvalidRequestError`) a grammar llama.cpp would not take: syntax errors, undefined rules, no `root`
    rule, left recursion. Cheap (a pass in Python, then llama.cpp's own parser without a model), cached by text."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError("the grammar must be a non-empty string", param=param)
    if len(text) > MAX_GRAMMAR_CHARS:
        raise InvalidRequestError(
            f"the grammar is {len(text):,} characters; the limit is {MAX_GRAMMAR_CHARS:,}", param=param
        )
    problem = _grammar_problem(text)
    if problem is not None:
        raise InvalidRequestError(f"the grammar is not valid GBNF: {problem}", param=param)


@functools.lru_cache(maxsize=512)
def compiled(grammar_text: str) -> LlamaGrammar:
    """The grammar, checked (`check_gbnf`), as llama-cpp-python's `LlamaGrammar`; cached, so a repeated request
    checks nothing again. A LlamaGrammar holds only the text: each request's sampler gets its own parsed state."""
    check_gbnf(grammar_text)
    from llama_cpp.llama_grammar import LlamaGrammar

    return LlamaGrammar.from_string(grammar_text, verbose=False)


@functools.lru_cache(maxsize=512)
def _grammar_problem(text: str) -> str | None:
    return _syntax_problem(text) or _llama_problem(text)


def _llama_problem(text: str) -> str | None:
    """What llama.cpp's own parser says (without a vocabulary, so no model is needed)."""
    import llama_cpp

    from inference.text import captured_llama_log

    with captured_llama_log() as lines:
        sampler = llama_cpp.llama_sampler_init_grammar(None, text.encode(), b"root")
    if sampler:
        llama_cpp.llama_sampler_free(sampler)
        return None
    said = " ".join(line.strip() for line in lines if line.strip())
    return f"llama.cpp refused it ({said[:200]})" if said else "llama.cpp refused it"


_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")
_HEX = frozenset("0123456789abcdefABCDEF")
_ESCAPES = {"x": 2, "u": 4, "U": 8, "t": 0, "r": 0, "n": 0, "\\": 0, '"': 0, "[": 0, "]": 0, "-": 0}


class _Syntax(Exception):
    pass


def _syntax_problem(text: str) -> str | None:
    """The first thing llama.cpp's GBNF parser would refuse, in words; None when it parses.

    A linear pass with a depth counter (no recursion), mirroring llama.cpp's grammar-parser: rules
    `name ::= alternates` ending at a newline outside parentheses; literals, character classes, rule names,
    groups, `.`, and the repetitions `* + ? {m,n}`. Nesting and repetition counts are bounded here because
    llama.cpp's parser recurses on nesting and expands repetitions (a hostile grammar would crash the process).
    Token references (`<...>`) are refused: they need a model's vocabulary."""
    if "\x00" in text:
        return "it contains a NUL character"
    n = len(text)

    def where(i: int) -> str:
        line = text.count("\n", 0, i) + 1
        return f"line {line}: {text[i : i + 20]!r}" if i < n else "the end"

    def space(i: int, newline: bool) -> int:
        while i < n:
            c = text[i]
            if c == "#":
                while i < n and text[i] not in "\r\n":
                    i += 1
            elif c in " \t" or (newline and c in "\r\n"):
                i += 1
            else:
                break
        return i

    def name_end(i: int) -> int:
        while i < n and text[i] in _WORD:
            i += 1
        return i

    def char_end(i: int) -> int:
        if text[i] != "\\":
            return i + 1
        if i + 1 >= n:
            raise _Syntax(f"unexpected end after a backslash at {where(i)}")
        size = _ESCAPES.get(text[i + 1])
        if size is None:
            raise _Syntax(f"unknown escape at {where(i)}")
        digits = text[i + 2 : i + 2 + size]
        if len(digits) != size or not all(c in _HEX for c in digits):
            raise _Syntax(f"expecting {size} hex digits at {where(i)}")
        return i + 2 + size

    def count(i: int, nested: bool) -> tuple[int | None, int]:
        j = i
        while j < n and text[j].isascii() and text[j].isdigit():
            j += 1
        value = int(text[i:j]) if j > i else None
        if value is not None and value > MAX_REPEAT:
            raise _Syntax(f"repetitions above {MAX_REPEAT} are not supported ({where(i)})")
        return value, space(j, nested)

    defined: set[str] = set()
    used: dict[str, int] = {}
    try:
        i = space(0, True)
        while i < n:
            j = name_end(i)
            if j == i:
                raise _Syntax(f"expecting a rule name at {where(i)}")
            defined.add(text[i:j])
            i = space(j, False)
            if not text.startswith("::=", i):
                raise _Syntax(f"expecting ::= at {where(i)}")
            i = space(i + 3, True)
            depth = 0
            item = False  # something a repetition can apply to
            while i < n:
                c = text[i]
                if c == '"':
                    j = i + 1
                    while j < n and text[j] != '"':
                        j = char_end(j)
                    if j >= n:
                        raise _Syntax(f"unterminated literal at {where(i)}")
                    item, i = True, space(j + 1, depth > 0)
                elif c == "[":
                    j = i + 1
                    while j < n and text[j] != "]":
                        j = char_end(j)
                    if j >= n:
                        raise _Syntax(f"unterminated character class at {where(i)}")
                    item, i = True, space(j + 1, depth > 0)
                elif c in _WORD:
                    j = name_end(i)
                    used.setdefault(text[i:j], i)
                    item, i = True, space(j, depth > 0)
                elif c == "(":
                    depth += 1
                    if depth > MAX_NESTING:
                        raise _Syntax(f"groups nested deeper than {MAX_NESTING} are not supported")
                    item, i = False, space(i + 1, True)
                elif c == ")" and depth > 0:
                    depth -= 1
                    item, i = True, space(i + 1, depth > 0)
                elif c == "|":
                    item, i = False, space(i + 1, True)
                elif c == ".":
                    item, i = True, space(i + 1, depth > 0)
                elif c in "*+?":
                    if not item:
                        raise _Syntax(f"expecting something to repeat before {c!r} at {where(i)}")
                    i = space(i + 1, depth > 0)
                elif c == "{":
                    if not item:
                        raise _Syntax(f"expecting something to repeat before '{{' at {where(i)}")
                    low, j = count(space(i + 1, depth > 0), depth > 0)
                    high = low
                    if j < n and text[j] == ",":
                        high, j = count(space(j + 1, depth > 0), depth > 0)
                    if low is None or j >= n or text[j] != "}":
                        raise _Syntax(f"expecting {{m}}, {{m,}} or {{m,n}} at {where(i)}")
                    if high is not None and high < low:
                        raise _Syntax(f"a repetition's maximum is below its minimum at {where(i)}")
                    i = space(j + 1, depth > 0)
                elif c in "<!":
                    raise _Syntax(f"token references (<...>) are not supported ({where(i)})")
                else:
                    break
            if depth > 0:
                raise _Syntax(f"expecting ')' at {where(i)}")
            if i < n:
                if text[i] == "\r":
                    i += 2 if text[i + 1 : i + 2] == "\n" else 1
                elif text[i] == "\n":
                    i += 1
                else:
                    raise _Syntax(f"unexpected {text[i]!r} at {where(i)}")
            i = space(i, True)
    except _Syntax as exc:
        return str(exc)
    for name, at in used.items():
        if name not in defined:
            return f"undefined rule {name!r} ({where(at)})"
    if "root" not in defined:
        return "there is no root rule (root ::= ...)"
    return None


# --- JSON Schema -----------------------------------------------------------------------------------------------


class _Refused(Exception):
    """The schema asks for something the grammar cannot enforce, or is not a schema; the message says which."""


def _unsupported(feature: str, path: str) -> _Refused:
    where = f" (at {path})" if path != "#" else ""
    return _Refused(f"the schema's {feature}{where} is not supported")


def gbnf_from_json_schema(schema: dict[str, Any], *, param: str | None = None) -> str:
    """GBNF for JSON that validates against `schema`; refuses (`InvalidRequestError` with `param`) what it cannot
    enforce, naming the feature and where: "the schema's patternProperties (at #/properties/tags) is not
    supported". Cached by the schema's JSON text."""
    if not isinstance(schema, dict):
        raise InvalidRequestError("the schema must be a JSON object", param=param)
    try:
        key = json.dumps(schema, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"the schema must be plain JSON ({exc})", param=param) from None
    if len(key) > MAX_SCHEMA_CHARS:
        raise InvalidRequestError(
            f"the schema is {len(key):,} characters as JSON; the limit is {MAX_SCHEMA_CHARS:,}", param=param
        )
    problem, grammar = _converted(key)
    if problem is not None:
        raise InvalidRequestError(problem, param=param)
    return grammar


@functools.lru_cache(maxsize=256)
def _converted(schema_json: str) -> tuple[str | None, str]:
    schema = json.loads(schema_json)
    try:
        _check_schema(schema, schema, "#", 0, set())
        converter = _converter_type()(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        converter.resolve_refs(schema, "")
        converter.visit(schema, "")
        grammar = converter.format_grammar()
    except _Refused as exc:
        return str(exc), ""
    except RecursionError:
        return "the schema nests too deeply (or has too many optional properties) to be turned into a grammar", ""
    except (AssertionError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        return f"the schema could not be turned into a grammar ({str(exc)[:200]})", ""
    if len(grammar) > MAX_GRAMMAR_CHARS:
        return f"the schema's grammar would be longer than {MAX_GRAMMAR_CHARS:,} characters", ""
    problem = _grammar_problem(grammar)
    if problem is not None:  # e.g. a pattern the converter passed through but llama.cpp cannot read
        return f"the schema could not be turned into a valid grammar ({problem})", ""
    return None, grammar


def _resolve(root: Any, ref: str) -> Any:
    """The local subschema a `#/...` reference names (JSON Pointer), or None."""
    node = root
    for part in ref[2:].split("/") if ref != "#" else []:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_schema(node: Any, root: dict[str, Any], path: str, depth: int, seen: set[str]) -> None:
    """Refuse, naming the keyword and where, whatever the conversion would drop or misread (every subschema the
    conversion visits, referenced ones included; `seen`: references already checked)."""
    if isinstance(node, bool):
        if node is False:
            raise _unsupported("false subschema", path)
        return
    if not isinstance(node, dict):
        raise _Refused(f"the schema at {path} must be an object (got {type(node).__name__})")
    if depth > MAX_SCHEMA_DEPTH:
        raise _unsupported(f"nesting deeper than {MAX_SCHEMA_DEPTH} levels", path)
    for keyword in UNSUPPORTED:
        if keyword in node:
            raise _unsupported(keyword, path)
    if node.get("uniqueItems") is True:
        raise _unsupported("uniqueItems", path)
    constraints = set(node) - ANNOTATIONS

    if "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise _unsupported(f"$ref to {ref!r} (only references inside the schema, '#/...')", path)
        target = _resolve(root, ref)
        if target is None:
            raise _Refused(f"the schema's $ref {ref!r} (at {path}) points at nothing")
        if constraints - {"$ref"}:
            raise _unsupported(f"{sorted(constraints - {'$ref'})[0]} beside $ref", path)
        if ref not in seen:
            seen.add(ref)
            _check_schema(target, root, ref, depth + 1, seen)
    for union in ("anyOf", "oneOf"):
        if union in node:
            if not isinstance(node[union], list) or not node[union]:
                raise _Refused(f"the schema's {union} (at {path}) must be a non-empty list")
            if constraints - {union}:
                raise _unsupported(f"{sorted(constraints - {union})[0]} beside {union}", path)
    if "allOf" in node:
        parts = node["allOf"]
        if not isinstance(parts, list) or not parts:
            raise _Refused(f"the schema's allOf (at {path}) must be a non-empty list")
        if constraints - {"allOf", "type"} or node.get("type", "object") != "object":
            raise _unsupported("allOf beside other keywords", path)
        for index, part in enumerate(parts):  # the converter merges object parts' properties; nothing else
            target = _resolve(root, part["$ref"]) if isinstance(part, dict) and "$ref" in part else part
            if (
                not isinstance(target, dict)
                or "properties" not in target
                or set(target) - ANNOTATIONS - {"type", "properties", "required", "additionalProperties"}
            ):
                raise _unsupported("allOf of anything but objects with properties", f"{path}/allOf/{index}")

    declared = node.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared is not None else []
    for kind in types:
        if kind not in TYPES:
            raise _unsupported(f"type {kind!r}", path)
    for keyword in BOUNDS:
        if keyword in node:
            value = node[keyword]
            if not (_is_number(value) or (keyword.startswith("exclusive") and isinstance(value, bool))):
                raise _Refused(f"the schema's {keyword} (at {path}) must be a number")
            if not {"integer", "number"} & set(types):
                raise _unsupported(f"{keyword} without type integer or number", path)
    for keyword in (*LENGTHS, *SIZES):
        if keyword in node:
            value = node[keyword]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise _Refused(f"the schema's {keyword} (at {path}) must be a non-negative integer")
            if value > MAX_REPEAT:
                raise _unsupported(f"{keyword} above {MAX_REPEAT}", path)
    if any(k in node for k in LENGTHS) and "string" not in types:
        raise _unsupported("minLength or maxLength without type string", path)
    if "pattern" in node:
        if not isinstance(node["pattern"], str):
            raise _Refused(f"the schema's pattern (at {path}) must be a string")
        if any(k in node for k in LENGTHS) or node.get("format") in ENFORCED_FORMATS:
            raise _unsupported("pattern beside minLength, maxLength or format", path)
        _regex_for_gbnf(node["pattern"], path=path)
    if any(k in node for k in LENGTHS) and node.get("format") in ENFORCED_FORMATS:
        raise _unsupported(f"minLength or maxLength beside format {node['format']!r}", path)
    if "prefixItems" in node and (node.get("items") not in (None, False) or any(k in node for k in SIZES)):
        raise _unsupported("items, minItems or maxItems beside prefixItems", path)
    if isinstance(node.get("items"), list) and any(k in node for k in SIZES):
        raise _unsupported("minItems or maxItems beside a list of items", path)
    if "enum" in node and (not isinstance(node["enum"], list) or not node["enum"]):
        raise _Refused(f"the schema's enum (at {path}) must be a non-empty list")
    required = node.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        raise _Refused(f"the schema's required (at {path}) must be a list of property names")

    def walk(child: Any, where: str) -> None:
        _check_schema(child, root, where, depth + 1, seen)

    properties = node.get("properties", {})
    if not isinstance(properties, dict):
        raise _Refused(f"the schema's properties (at {path}) must be an object")
    for name, child in properties.items():
        walk(child, f"{path}/properties/{name}")
    if isinstance(node.get("additionalProperties"), dict):
        walk(node["additionalProperties"], f"{path}/additionalProperties")
    items = node.get("items")
    if isinstance(items, dict):
        walk(items, f"{path}/items")
    for keyword in ("items", "prefixItems", "anyOf", "oneOf", "allOf"):
        if isinstance(node.get(keyword), list):
            for index, child in enumerate(node[keyword]):
                walk(child, f"{path}/{keyword}/{index}")
    for keyword in ("$defs", "definitions"):
        if isinstance(node.get(keyword), dict):
            for name, child in node[keyword].items():
                walk(child, f"{path}/{keyword}/{name}")


_REGEX_CLASSES = {"d": "0-9", "w": "a-zA-Z0-9_", "s": " "}  # \s: a space (a raw tab or newline breaks JSON)
_REGEX_UNSUPPORTED = re.compile(r"\(\?(?!:)|\\[1-9bBDWSAZzGpPk]")
_REGEX_RAW_CONTROL = re.compile(r"\\[ntrfv]")  # a raw control character cannot stand in a JSON string


def _regex_for_gbnf(pattern: str, *, path: str) -> str:
    """A schema's pattern as llama-cpp-python's converter reads it: an unanchored end filled with `.*` (a JSON
    Schema pattern searches), `\\d \\w \\s` as classes, negated classes (and `.`, see the Converter) kept away
    from what a JSON string cannot hold raw; what the converter cannot read is refused."""
    if _REGEX_UNSUPPORTED.search(pattern):
        raise _unsupported(f"pattern {pattern!r} (lookarounds, backreferences, \\b and the like)", path)
    if '"' in pattern or "\\\\" in pattern or _REGEX_RAW_CONTROL.search(pattern):
        raise _unsupported(f"pattern {pattern!r} (a quote, backslash or control character)", path)
    body = pattern
    start = body.startswith("^")
    end = body.endswith("$") and not body.endswith("\\$")
    body = body[1 if start else 0 : len(body) - 1 if end else len(body)]
    out: list[str] = []
    i, in_class = 0, False
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in _REGEX_CLASSES:
                chars = _REGEX_CLASSES[nxt]
                out.append(chars if in_class else f"[{chars}]")
            elif nxt in ".^$/":
                out.append(nxt if in_class else f"[{nxt}]")
            else:
                out.append(body[i : i + 2])
            i += 2
            continue
        if c == "(" and not in_class and body.startswith("(?:", i):  # a non-capturing group is just a group
            out.append("(")
            i += 3
            continue
        if c == "[" and not in_class:
            in_class = True
            if body.startswith("[^", i):
                out.append('[^"\\\\\\x00-\\x1F\\x7F')
                i += 2
                continue
        elif c == "]" and in_class:
            in_class = False
        out.append(c)
        i += 1
    converted = "".join(out)
    return f"{'' if start else '.*'}({converted}){'' if end else '.*'}"


@functools.cache
def _converter_type() -> type[Any]:
    """llama-cpp-python's SchemaConverter with what it lacks (imported here: importing llama_cpp loads the library)."""
    from llama_cpp import llama_grammar as lg

    safe_char = lg.BuiltinRule(JSON_CHAR_GBNF, [])
    safe_dot = r'[^"\\\x7F\x00-\x1F]'

    class Converter(lg.SchemaConverter):  # type: ignore[misc]  # llama_cpp is Any to mypy
        def _add_primitive(self, name: str, rule: Any) -> str:
            if rule is lg.PRIMITIVE_RULES["char"]:
                rule = safe_char
            return str(super()._add_primitive(name, rule))

        def _add_rule(self, name: str, rule: str) -> str:
            if name == "dot" and rule == lg.DOT and not self._raw_pattern:
                rule = safe_dot  # `.` in a pattern: no raw quote, backslash or control character in a JSON string
            return str(super()._add_rule(name, rule))

        def _visit_pattern(self, pattern: str, name: str) -> str:
            if not self._raw_pattern:
                body = _regex_for_gbnf(pattern, path="#")
                pattern = f"^{body}$"
            return str(super()._visit_pattern(pattern, name))

        def visit(self, schema: Any, name: str) -> str:
            if schema is True:
                schema = {}
            rule_name = name + "-" if name in lg.RESERVED_NAMES else name or "root"
            if any(k in schema for k in ("$ref", "oneOf", "anyOf", "const", "enum")):
                return str(super().visit(schema, name))
            kind = schema.get("type")
            if isinstance(kind, list):  # keep the other keywords on each alternative (the converter drops them)
                alternatives = [{**schema, "type": t} for t in kind]
                return str(self._add_rule(rule_name, self._generate_union_rule(name, alternatives)))
            if kind in ("integer", "number") and any(k in schema for k in BOUNDS):
                return str(self._add_rule(rule_name, f"({' | '.join(_bounded(schema))}) space"))
            if kind == "string" and any(k in schema for k in LENGTHS) and "pattern" not in schema:
                char = self._add_primitive("char", lg.PRIMITIVE_RULES["char"])
                count = _repeat(schema.get("minLength", 0), schema.get("maxLength"))
                return str(self._add_rule(rule_name, f'"\\"" {char}{count} "\\"" space'))
            if kind in (None, "array") and isinstance(schema.get("items"), dict) and any(k in schema for k in SIZES):
                item = self.visit(schema["items"], f"{name}{'-' if name else ''}item")
                low, high = schema.get("minItems", 0), schema.get("maxItems")
                return str(self._add_rule(rule_name, f'"[" space {_items(item, low, high)} "]" space'))
            if kind in (None, "object") and isinstance(schema.get("required"), list):
                # A required property without a schema of its own may hold any value; the converter left it out.
                properties = schema.get("properties", {})
                missing: dict[str, Any] = {p: {} for p in schema["required"] if p not in properties}
                if missing:
                    schema = {**schema, "properties": {**properties, **missing}}
            return str(super().visit(schema, name))

    return Converter


def _repeat(low: int, high: int | None) -> str:
    if high is None:
        return f"{{{low},}}"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


def _items(item: str, low: int, high: int | None) -> str:
    """A list of low..high items separated by commas (GBNF repetitions, not nested groups)."""
    if high == 0:
        return ""
    more_low, more_high = max(low - 1, 0), None if high is None else high - 1
    rest = "" if more_high == 0 else f' ( "," space {item} ){_repeat(more_low, more_high)}'
    return f"{item}{rest}" if low > 0 else f"( {item}{rest} )?"


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low excluded, high, high excluded), reading both drafts' exclusiveMinimum/Maximum."""
    low: float | None = schema.get("minimum")
    high: float | None = schema.get("maximum")
    low_open = high_open = False
    for key, is_low in (("exclusiveMinimum", True), ("exclusiveMaximum", False)):
        value = schema.get(key)
        if isinstance(value, bool):  # draft 4: a flag on minimum/maximum
            if is_low:
                low_open = value
            else:
                high_open = value
        elif value is not None:
            current = low if is_low else high
            tighter = current is None or (value >= current if is_low else value <= current)
            if is_low and tighter:
                low, low_open = value, True
            elif not is_low and tighter:
                high, high_open = value, True
    return low, low_open, high, high_open


def _bounded(schema: dict[str, Any]) -> list[str]:
    """GBNF alternatives for an integer or a number within the schema's bounds (no exponent).

    An integer: every integer in range. A number: integers in range, and decimals n.ddd with a nonzero last digit
    whose whole interval (n, n+1) lies in the whole-number part of the range; a bound that is not a whole number
    is rounded inward, so some valid values are never produced but every one produced is valid."""
    low, low_open, high, high_open = _bounds(schema)
    if low is not None and high is not None and (low > high or (low == high and (low_open or high_open))):
        raise _Refused("the schema's minimum is above its maximum: no value fits")
    limit = 10**MAX_DIGITS
    first = None if low is None or low <= -limit else math.floor(low) + 1 if low_open else math.ceil(low)
    last = None if high is None or high >= limit else math.ceil(high) - 1 if high_open else math.floor(high)
    alternatives = _integers(first, last)
    if schema.get("type") == "number":
        whole_low = None if low is None or low <= -limit else math.ceil(low)
        whole_high = None if high is None or high >= limit else math.floor(high)
        fraction = ' "." [0-9]{0,15} [1-9]'
        positive = _naturals(max(whole_low or 0, 0), None if whole_high is None else whole_high - 1)
        negative = _naturals(
            max(-whole_high, 0) if whole_high is not None else 0, None if whole_low is None else -whole_low - 1
        )
        alternatives += [f"({' | '.join(positive)}){fraction}"] if positive else []
        alternatives += [f'"-" ({" | ".join(negative)}){fraction}'] if negative else []
    if not alternatives:
        raise _Refused("the schema's bounds leave no value this grammar can write (no whole number between them)")
    return alternatives


def _integers(first: int | None, last: int | None) -> list[str]:
    """Alternatives for the integers first..last (None: unbounded, up to MAX_DIGITS digits)."""
    if first is not None and last is not None and first > last:
        return []
    alternatives = []
    if last is None or last >= 0:
        alternatives += _naturals(max(first, 0) if first is not None else 0, last)
    if first is None or first < 0:
        magnitudes = _naturals(max(-last, 1) if last is not None else 1, -first if first is not None else None)
        alternatives += [f'"-" ({" | ".join(magnitudes)})'] if magnitudes else []
    return alternatives


def _naturals(first: int, last: int | None) -> list[str]:
    """Alternatives for the decimal numerals (no leading zero) of first..last, both >= 0 (last None: unbounded)."""
    if last is not None and first > last:
        return []
    alternatives = []
    widest = len(str(last)) if last is not None else len(str(first))
    for width in range(len(str(first)), widest + 1):
        low = max(first, 10 ** (width - 1) if width > 1 else 0)
        high = min(last, 10**width - 1) if last is not None else 10**width - 1
        if low <= high:
            alternatives += _same_width(str(low), str(high))
    if last is None and widest < MAX_DIGITS:
        alternatives.append(f"[1-9] [0-9]{{{widest},{MAX_DIGITS - 1}}}")
    return alternatives


def _same_width(low: str, high: str) -> list[str]:
    """Alternatives for the numerals low..high of one width (the usual digit-by-digit split)."""
    if low == high:
        return [f'"{low}"']
    common = 0
    while low[common] == high[common]:
        common += 1
    if common:
        return [f'"{low[:common]}" {alt}' for alt in _same_width(low[common:], high[common:])]
    rest = len(low) - 1
    tail = "" if rest == 0 else " [0-9]" if rest == 1 else f" [0-9]{{{rest}}}"
    low_full, high_full = low[1:] == "0" * rest, high[1:] == "9" * rest
    alternatives = []
    if not low_full:
        alternatives += [f'"{low[0]}" {alt}' for alt in _same_width(low[1:], "9" * rest)]
    middle_low, middle_high = int(low[0]) + (0 if low_full else 1), int(high[0]) - (0 if high_full else 1)
    if middle_low <= middle_high:
        digits = f'"{middle_low}"' if middle_low == middle_high else f"[{middle_low}-{middle_high}]"
        alternatives.append(digits + tail)
    if not high_full:
        alternatives += [f'"{high[0]}" {alt}' for alt in _same_width("0" * rest, high[1:])]
    return alternatives
