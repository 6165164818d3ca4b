"""Constrained decoding on the real models: grammars from JSON Schemas (inference/grammar.py) keep every reply of
SmolLM2 (serialized and batched) and Gemma (serialized) valid against its schema, greedy and sampled; each
batched sequence has its own grammar state; what the grammar cannot enforce is refused, naming the feature."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator

import jsonschema_rs
import pytest

from inference.batching import BatchedTextEngine
from inference.grammar import (
    JSON_OBJECT_GBNF,
    check_gbnf,
    compiled,
    gbnf_from_json_schema,
)
from inference.text import LlamaTextEngine
from inference.types import ChatMessage, InvalidRequestError, SamplingParams, TextChunk
from tests.inference.conftest import GPU, THREADS, catalog_spec

SAMPLES = 20
MAX_TOKENS = 128  # every schema below has a longest reply under this, so each one ends by itself

# Each bounded (string lengths, array sizes, integer ranges) so that even the longest reply fits MAX_TOKENS.
SCHEMAS: dict[str, dict] = {
    "contact": {  # nested object, required and optional fields, integer bounds, string lengths and a pattern
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 12},
            "age": {"type": "integer", "minimum": 18, "maximum": 99},
            "email": {"type": "string", "maxLength": 16},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 12},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                },
                "required": ["city", "zip"],
            },
        },
        "required": ["name", "age", "address"],
    },
    "review": {  # enum, a number in [0, 1], a boolean, a nullable string
        "type": "object",
        "properties": {
            "sentiment": {"enum": ["positive", "negative", "neutral"]},
            "score": {"type": "number", "minimum": 0, "maximum": 1},
            "recommend": {"type": "boolean"},
            "note": {"type": ["string", "null"], "maxLength": 16},
        },
        "required": ["sentiment", "score", "recommend", "note"],
    },
    "order": {  # an array of objects with a size range, exclusive and negative bounds
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "sku": {"type": "string", "enum": ["A1", "B2", "C3"]},
                        "qty": {"type": "integer", "minimum": 1, "maximum": 9},
                    },
                    "required": ["sku", "qty"],
                },
                "minItems": 1,
                "maxItems": 3,
            },
            "total": {"type": "integer", "exclusiveMinimum": 0, "maximum": 1000},
            "discount": {"type": "number", "minimum": -20, "exclusiveMaximum": 0},
        },
        "required": ["lines", "total", "discount"],
    },
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 10}, "minItems": 2, "maxItems": 4},
    "segment": {  # $defs and $ref, anyOf of constants
        "$defs": {
            "point": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": -50, "maximum": 50},
                    "y": {"type": "integer", "minimum": -50, "maximum": 50},
                },
                "required": ["x", "y"],
            }
        },
        "type": "object",
        "properties": {
            "start": {"$ref": "#/$defs/point"},
            "end": {"$ref": "#/$defs/point"},
            "style": {"anyOf": [{"const": "line"}, {"const": "arrow"}]},
        },
        "required": ["start", "end", "style"],
    },
}
ASK = {
    "contact": "Give me a contact card for a person as JSON.",
    "review": "Review the movie Jaws as JSON.",
    "order": "Write an order for two items as JSON.",
    "tags": "List some tags for a blog post about cooking as JSON.",
    "segment": "Describe a line segment as JSON.",
}


@pytest.fixture(scope="module")
def batched() -> BatchedTextEngine:
    spec = catalog_spec("smollm2-135m-instruct")
    return BatchedTextEngine(path=spec.path, n_ctx=512, threads=THREADS, slots=8, gpu=GPU)


def ask(text: str) -> list[ChatMessage]:
    return [ChatMessage("user", text)]


def run(chunks: Iterator[TextChunk]) -> tuple[str, TextChunk]:
    items = list(chunks)
    return "".join(c.text for c in items), items[-1]


def run_together(engine: BatchedTextEngine, requests: dict) -> dict:
    """Each request on its own thread, all at once: {key: (text, last chunk)}."""
    results: dict = {}

    def collect(key: object, messages: list[ChatMessage], params: SamplingParams) -> None:
        results[key] = run(engine.chat(messages, params))

    threads = [threading.Thread(target=collect, args=(key, *request)) for key, request in requests.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert len(results) == len(requests)
    return results


def assert_valid(name: str, text: str, last: TextChunk) -> None:
    assert last.finish_reason == "stop", f"{name}: cut short ({last.usage}): {text!r}"
    value = json.loads(text)
    errors = [e.message for e in jsonschema_rs.validator_for(SCHEMAS[name]).iter_errors(value)]
    assert not errors, f"{name}: {text!r}: {errors}"


def params_for(name: str, seed: int | None) -> SamplingParams:
    """seed None: greedy; otherwise sampled, at a temperature that wanders."""
    grammar = gbnf_from_json_schema(SCHEMAS[name])
    if seed is None:
        return SamplingParams(temperature=0, max_tokens=MAX_TOKENS, grammar=grammar)
    return SamplingParams(temperature=1.0, seed=seed, max_tokens=MAX_TOKENS, grammar=grammar)


# --- the serialized engine ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_smollm2_reply_validates_greedy_and_sampled(smollm2, name):
    for seed in (None, *range(SAMPLES)):
        text, last = run(smollm2.chat(ask(ASK[name]), params_for(name, seed)))
        assert_valid(name, text, last)
        assert last.usage.completion_tokens >= 1


@pytest.mark.parametrize("name", ["contact", "order"])  # the nested ones; all five take Gemma 100 s on 2 cores
def test_every_gemma_completion_validates_greedy_and_sampled(gemma, name):
    prompt = f"{ASK[name]}\nJSON: "
    for seed in (None, *range(SAMPLES)):
        text, last = run(gemma.complete(prompt, params_for(name, seed)))
        assert_valid(name, text, last)


def test_grammar_first_sampling_is_valid_too(smollm2):
    """The other placement (the grammar masks the whole vocabulary before every pick), kept for the bench."""
    smollm2.lazy_grammar = False
    try:
        for seed in (None, 1, 2, 3):
            assert_valid("order", *run(smollm2.chat(ask(ASK["order"]), params_for("order", seed))))
    finally:
        del smollm2.lazy_grammar  # back to the class's lazy default
    assert smollm2.lazy_grammar is LlamaTextEngine.lazy_grammar is True


def test_max_tokens_cuts_the_json_short_and_says_length(smollm2):
    params = SamplingParams(temperature=0, max_tokens=5, grammar=gbnf_from_json_schema(SCHEMAS["contact"]))
    text, last = run(smollm2.chat(ask(ASK["contact"]), params))
    assert (last.finish_reason, last.usage.completion_tokens) == ("length", 5)
    assert text.startswith("{")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_json_object_mode_replies_with_an_object(smollm2):
    for seed in (None, 1, 2):
        temperature = 0 if seed is None else 0.8
        params = SamplingParams(temperature=temperature, seed=seed, max_tokens=96, grammar=JSON_OBJECT_GBNF)
        text, last = run(smollm2.chat(ask("Describe a cat as a JSON object."), params))
        assert text.startswith("{")
        if last.finish_reason == "stop":
            assert isinstance(json.loads(text), dict)


def test_a_constrained_request_leaves_nothing_behind_for_the_next(smollm2):
    params = SamplingParams(temperature=0.9, seed=7, max_tokens=24)
    before = run(smollm2.chat(ask("Tell me about the sea."), params))[0]
    assert_valid("tags", *run(smollm2.chat(ask(ASK["tags"]), params_for("tags", 3))))
    assert run(smollm2.chat(ask("Tell me about the sea."), params))[0] == before


def test_a_bad_grammar_is_refused_when_the_request_is_made(smollm2, batched):
    params = SamplingParams(temperature=0, max_tokens=8, grammar='root ::= "a" (')
    for engine in (smollm2, batched):
        with pytest.raises(InvalidRequestError) as refused:
            engine.chat(ask("Hi"), params)
        assert refused.value.param == "grammar"


# --- the batching engine ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_batched_reply_validates_eight_streams_at_once(batched, name):
    """Greedy plus 20 seeds, decoded 8 at a time in one context, each sequence with its own grammar state."""
    requests = {seed: (ask(ASK[name]), params_for(name, seed)) for seed in (None, *range(SAMPLES))}
    results = run_together(batched, requests)
    for text, last in results.values():
        assert_valid(name, text, last)
    greedy_alone = run(batched.chat(ask(ASK[name]), params_for(name, None)))[0]
    assert results[None][0] == greedy_alone


def test_constrained_and_free_streams_share_a_batch_without_mixing(batched):
    """Eight streams at once, different schemas and none: each keeps to its own; the free one is unchanged."""
    free = (ask("What is the capital of France?"), SamplingParams(temperature=0, max_tokens=24))
    alone = run_together(batched, {"free": free})["free"][0]
    names = [*SCHEMAS, "contact", "review"]
    requests = {(n, i): (ask(ASK[n]), params_for(n, 100 + i)) for i, n in enumerate(names)}
    results = run_together(batched, {**requests, "free": free})
    assert results["free"][0] == alone
    for (name, _), (text, last) in ((k, v) for k, v in results.items() if k != "free"):
        assert_valid(name, text, last)


# --- conversion and checks (no model) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "feature"),
    [
        ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
        ({"type": "object", "properties": {"a": {"$ref": "https://example.com/a.json"}}}, "$ref"),
        ({"$ref": "other.json#/x"}, "$ref"),
        ({"type": "integer", "multipleOf": 5}, "multipleOf"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "not"),
        ({"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}, "if"),
        ({"type": "object", "propertyNames": {"maxLength": 3}}, "propertyNames"),
        ({"type": "object", "minProperties": 2}, "minProperties"),
        ({"type": "array", "contains": {"type": "integer"}}, "contains"),
        ({"type": "string", "maxLength": 5000}, "maxLength above 1000"),
        ({"type": "date"}, "type 'date'"),
        ({"type": "string", "pattern": "^(?=a)b$"}, "pattern"),
        ({"type": "string", "pattern": '^"x"$'}, "pattern"),
        ({"minimum": 3}, "minimum without type integer or number"),
        (
            {"$defs": {"a": {"type": "integer"}}, "properties": {"a": {"$ref": "#/$defs/a", "minimum": 1}}},
            "minimum beside $ref",
        ),
        ({"anyOf": [{"type": "string"}], "maxLength": 3}, "maxLength beside anyOf"),
        ({"allOf": [{"type": "integer"}]}, "allOf"),
    ],
)
def test_an_unsupported_schema_feature_is_refused_by_name(schema, feature):
    with pytest.raises(InvalidRequestError) as refused:
        gbnf_from_json_schema(schema, param="response_format.json_schema.schema")
    assert f"the schema's {feature}" in str(refused.value) and "not supported" in str(refused.value)
    assert refused.value.param == "response_format.json_schema.schema"


def test_a_refusal_says_where_in_the_schema():
    schema = {"type": "object", "properties": {"meta": {"type": "object", "patternProperties": {"x": {}}}}}
    with pytest.raises(InvalidRequestError, match=r"patternProperties \(at #/properties/meta\) is not supported"):
        gbnf_from_json_schema(schema)


def test_a_feature_hidden_behind_a_reference_or_in_allof_is_refused_too():
    schema = {"defs": {"n": {"type": "integer", "multipleOf": 3}}, "properties": {"a": {"$ref": "#/defs/n"}}}
    with pytest.raises(InvalidRequestError, match=r"multipleOf \(at #/defs/n\)"):
        gbnf_from_json_schema(schema)
    schema = {"allOf": [{"properties": {"a": {"type": "integer", "multipleOf": 3}}}]}
    with pytest.raises(InvalidRequestError, match=r"multipleOf \(at #/allOf/0/properties/a\)"):
        gbnf_from_json_schema(schema)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "integer", "minimum": 5, "maximum": 1},
        {"type": "number", "minimum": 0.2, "maximum": 0.8},
        {"properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "required": "a"},
        [1, 2],
    ],
)
def test_a_schema_no_grammar_can_follow_is_refused(schema):
    with pytest.raises(InvalidRequestError):
        gbnf_from_json_schema(schema)  # type: ignore[arg-type]


def test_bounds_become_exact_digit_ranges():
    def values(schema: dict, candidates: range) -> set[int]:
        grammar = gbnf_from_json_schema(schema)
        return {n for n in candidates if _gbnf_accepts(grammar, json.dumps(n))}

    assert values({"type": "integer", "minimum": -12, "maximum": 107}, range(-200, 300)) == set(range(-12, 108))
    assert values({"type": "integer", "exclusiveMinimum": 9, "exclusiveMaximum": 21}, range(0, 40)) == set(
        range(10, 21)
    )
    assert values({"type": "integer", "minimum": 995}, range(900, 1200)) == set(range(995, 1200))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('root ::= "a" (', "expecting ')'"),
        ("root ::= missing", "undefined rule 'missing'"),
        ('start ::= "a"', "no root rule"),
        ('root ::= root "a"', "left recursion"),
        ('root ::= "\\q"', "unknown escape"),
        ("root ::= [a-z", "unterminated character class"),
        ('root ::= "a"{1,5000}', "repetitions above 1000"),
        ("root ::= " + "(" * 1000 + '"a"' + ")" * 1000, "nested deeper than 200"),
        ("root ::= <think>", "token references"),
        ("", "non-empty"),
    ],
)
def test_a_bad_grammar_is_refused_with_what_is_wrong(text, problem):
    with pytest.raises(InvalidRequestError, match=re.escape(problem)) as refused:
        check_gbnf(text)
    assert refused.value.param == "grammar"


def test_good_grammars_pass_and_are_compiled_once():
    check_gbnf(JSON_OBJECT_GBNF)
    for schema in SCHEMAS.values():
        check_gbnf(gbnf_from_json_schema(schema))
    grammar = gbnf_from_json_schema(SCHEMAS["order"])
    assert compiled(grammar) is compiled(grammar)
    assert gbnf_from_json_schema(SCHEMAS["order"]) is grammar  # the conversion is cached as well


def _gbnf_accepts(grammar: str, text: str) -> bool:
    """Whether the grammar accepts the whole text, with llama.cpp's own grammar engine (no model)."""
    import llama_cpp

    vocab = _VOCAB.get("vocab")
    if vocab is None:
        spec = catalog_spec("smollm2-135m-instruct")
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        model = llama_cpp.llama_model_load_from_file(str(spec.path).encode(), params)
        _VOCAB.update(model=model, vocab=llama_cpp.llama_model_get_vocab(model))
        vocab = _VOCAB["vocab"]
    llm_tokens = (llama_cpp.llama_token * 64)()
    n = llama_cpp.llama_tokenize(vocab, text.encode(), len(text.encode()), llm_tokens, 64, False, False)
    sampler = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode(), b"root")
    try:
        one = (llama_cpp.llama_token_data * 1)()
        array = llama_cpp.llama_token_data_array(one, 1, -1, False)
        for token in [*llm_tokens[:n], llama_cpp.llama_vocab_eos(vocab)]:
            one[0].id, one[0].logit, one[0].p = token, 1.0, 0.0
            array.size, array.selected = 1, -1
            llama_cpp.llama_sampler_apply(sampler, array)
            if one[0].logit == float("-inf"):
                return False
            if token != llama_cpp.llama_vocab_eos(vocab):
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


_VOCAB: dict = {}
