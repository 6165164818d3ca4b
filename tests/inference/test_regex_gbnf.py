"""inference/regex_gbnf.py: a regular expression as a llama.cpp grammar (TGI's regex grammars)."""

from __future__ import annotations

import pytest

from inference.grammar import check_gbnf
from inference.regex_gbnf import gbnf_from_regex
from inference.types import InvalidRequestError


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("(yes|no)", 'root ::= (("yes" | "no"))'),
        (r"\d{2,3}", "root ::= r0 r0 r0?"),
        ("[^0-9 ]+", "root ::= r0+"),
        ('"quoted"', 'root ::= "\\"quoted\\""'),
        ("a.c", 'root ::= "a" [^\\n] "c"'),
    ],
)
def test_patterns_become_grammars_llama_cpp_accepts(pattern, expected):
    grammar = gbnf_from_regex(pattern)
    assert grammar.splitlines()[0] == expected
    check_gbnf(grammar)  # llama.cpp's own parser takes it


@pytest.mark.parametrize(
    ("pattern", "named"),
    [
        ("(?=x)a", "look-ahead"),
        ("(a)\\1", "back-references"),
        ("a{1,1000}", "more than 200"),
        ("(?i)abc", "inline flags"),
        ("[", "unterminated"),
        ("\\bword\\b", "word boundaries"),
    ],
)
def test_what_cannot_be_enforced_is_refused_naming_it(pattern, named):
    with pytest.raises(InvalidRequestError, match=named):
        gbnf_from_regex(pattern)
