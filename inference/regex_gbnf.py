"""A regular expression as a GBNF grammar (llama.cpp's), so a reply can be forced to match it (TGI's `regex` grammar).

Python's own regex parser reads the pattern; the grammar is built from its parse tree. The whole reply must match
(as TGI does). Supported: literals, `.`, character classes and ranges (also negated), `\\d \\w \\s` and their
negations, groups, alternation, and the quantifiers `* + ? {m} {m,} {m,n}` (greedy or lazy, the same here). Not
supported, refused with a message naming the feature: look-arounds, back-references, conditionals and anchors in
the middle of a pattern.
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from inference.types import InvalidRequestError

MAX_REPEAT_EXPANDED = 200  # {m,n} with larger bounds than this is refused: the grammar would be enormous

CATEGORIES = {
    c.CATEGORY_DIGIT: "0-9",
    c.CATEGORY_WORD: "a-zA-Z0-9_",
    c.CATEGORY_SPACE: " \\t\\n\\r\\f\\v",
}
NEGATED = {
    c.CATEGORY_NOT_DIGIT: c.CATEGORY_DIGIT,
    c.CATEGORY_NOT_WORD: c.CATEGORY_WORD,
    c.CATEGORY_NOT_SPACE: c.CATEGORY_SPACE,
}


class RegexNotSupported(InvalidRequestError):
    pass


def _char(code: int) -> str:
    """One character inside a GBNF character class."""
    ch = chr(code)
    if ch in "\\]-^[":
        return "\\" + ch
    if ch == "\n":
        return "\\n"
    if ch == "\r":
        return "\\r"
    if ch == "\t":
        return "\\t"
    if code < 32 or code == 127:
        return f"\\x{code:02X}"
    return ch


def _literal(code: int) -> str:
    ch = chr(code)
    escaped = (
        ch.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f'"{escaped}"'


class _Builder:
    def __init__(self) -> None:
        self.rules: list[str] = []

    def rule(self, body: str) -> str:
        name = f"r{len(self.rules)}"
        self.rules.append(f"{name} ::= {body}")
        return name

    def sequence(self, items: Any) -> str:
        parts: list[str] = []
        run = ""  # consecutive literal characters become one string
        for op, av in items:
            if op is c.LITERAL:
                run += _literal(av)[1:-1]
                continue
            if run:
                parts.append(f'"{run}"')
                run = ""
            part = self.item(op, av)
            if part:
                parts.append(part)
        if run:
            parts.append(f'"{run}"')
        return " ".join(parts) if parts else '""'

    def item(self, op: Any, av: Any) -> str:
        if op is c.LITERAL:
            return _literal(av)
        if op is c.NOT_LITERAL:
            return f"[^{_char(av)}]"
        if op is c.ANY:
            return "[^\\n]"
        if op is c.IN:
            return self.charset(av)
        if op is c.SUBPATTERN:
            group, add_flags, del_flags, pattern = av
            if add_flags or del_flags:
                raise RegexNotSupported("regex: inline flags are not supported", param="parameters.grammar")
            return f"({self.sequence(pattern)})"
        if op is c.BRANCH:
            _, branches = av
            return "(" + " | ".join(self.sequence(b) for b in branches) + ")"
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            low, high, pattern = av
            inner = self.rule(self.sequence(pattern))
            if high is c.MAXREPEAT:
                if low == 0:
                    return f"{inner}*"
                if low == 1:
                    return f"{inner}+"
                if low > MAX_REPEAT_EXPANDED:
                    raise RegexNotSupported(
                        f"regex: a repeat of at least {low} is more than {MAX_REPEAT_EXPANDED}",
                        param="parameters.grammar",
                    )
                return " ".join([inner] * low) + f" {inner}*"
            if high > MAX_REPEAT_EXPANDED:
                raise RegexNotSupported(
                    f"regex: a repeat of up to {high} is more than {MAX_REPEAT_EXPANDED}", param="parameters.grammar"
                )
            if low == 0 and high == 1:
                return f"{inner}?"
            return " ".join([inner] * low + [f"{inner}?"] * (high - low)) or '""'
        if op is c.AT:
            if av in (c.AT_BEGINNING, c.AT_BEGINNING_STRING, c.AT_END, c.AT_END_STRING):
                return ""  # the whole reply matches anyway
            raise RegexNotSupported("regex: word boundaries are not supported", param="parameters.grammar")
        names = {c.ASSERT: "look-ahead", c.ASSERT_NOT: "negative look-around", c.GROUPREF: "back-references"}
        feature = names.get(op, str(op).lower().replace("_", " "))
        raise RegexNotSupported(f"regex: {feature}: not supported", param="parameters.grammar")

    def charset(self, items: Any) -> str:
        negate = False
        parts: list[str] = []
        for op, av in items:
            if op is c.NEGATE:
                negate = True
            elif op is c.LITERAL:
                parts.append(_char(av))
            elif op is c.RANGE:
                parts.append(f"{_char(av[0])}-{_char(av[1])}")
            elif op is c.CATEGORY:
                if av in CATEGORIES:
                    parts.append(CATEGORIES[av])
                elif av in NEGATED and len(items) == 1 and not negate:
                    return f"[^{CATEGORIES[NEGATED[av]]}]"
                else:
                    raise RegexNotSupported(
                        "regex: a negated class inside a character set is not supported", param="parameters.grammar"
                    )
            else:
                raise RegexNotSupported(
                    f"regex: {str(op).lower()} in a character set is not supported", param="parameters.grammar"
                )
        return f"[{'^' if negate else ''}{''.join(parts)}]"


def gbnf_from_regex(pattern: str) -> str:
    """The GBNF grammar of replies that match `pattern` whole; InvalidRequestError naming what is wrong."""
    try:
        tree = sre_parse.parse(pattern)
    except re.error as exc:
        raise RegexNotSupported(f"regex: {exc}", param="parameters.grammar") from None
    if tree.state.flags & (re.IGNORECASE | re.DOTALL):
        raise RegexNotSupported("regex: inline flags are not supported", param="parameters.grammar")
    builder = _Builder()
    root = builder.sequence(tree)
    return "\n".join([f"root ::= {root}", *builder.rules]) + "\n"
