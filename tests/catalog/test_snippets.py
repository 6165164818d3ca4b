"""Get Code snippets: valid in every language, and every language sends the same request, nasty text included.

The snippets are run for real against stand-ins: cURL in bash with `curl` as a shell function that dumps its
arguments, Python with `requests` / `openai` replaced by recorders, JavaScript in Node with `fetch` replaced.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from django.http import QueryDict
from django.template.loader import render_to_string

from inference import ModelSpec
from inference.catalog import load_catalog
from playground.catalog.forms import SamplingForm
from playground.catalog.snippets import DEFAULT_EMBEDDING_INPUT, Snippet, render_snippets

ROOT = Path(__file__).resolve().parents[2]
SPECS = {s.id: s for s in load_catalog([ROOT / "playground" / "models.toml"], models_dir=Path("/nonexistent"))}
BASE = "http://127.0.0.1:8000"
# Quotes of every kind, shell and template metacharacters, escapes, control and astral characters.
NASTY = 'It\'s "quoted" $HOME `id` $(id) \\n \\ back\\slash\nline two\ttab 🎉 </script> {{ x }} %s ${x}\u2028end\\'
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def text_values(spec: ModelSpec, **query: str) -> dict[str, Any]:
    data = QueryDict(mutable=True)
    for key, value in query.items():
        data[key] = value
    return {**SamplingForm(data, spec=spec).as_query(), "prompt": NASTY}


def values_for(spec: ModelSpec) -> dict[str, Any]:
    if spec.task in ("text-to-text", "text-completion"):
        return text_values(spec, temperature="0.3", top_k="17", max_tokens="99", seed="42", stop="END\n'x'")
    if spec.task == "embeddings":
        return {"input": [NASTY, "second"]}
    if spec.task == "text-to-speech":
        return {"input": NASTY, "speed": "1.5"}
    return {"language": "de", "task": "translate"}


CASES = [
    pytest.param(SPECS["smollm2-135m-instruct"], id="chat"),
    pytest.param(SPECS["gemma-3-270m"], id="completion"),
    pytest.param(SPECS["all-minilm-l6-v2"], id="embeddings"),
    pytest.param(SPECS["whisper-base"], id="stt-translate"),
    pytest.param(SPECS["whisper-tiny.en"], id="stt"),
    pytest.param(SPECS["piper-en-us-joe"], id="tts"),
]


def snippets_for(spec: ModelSpec, values: dict[str, Any] | None = None) -> dict[str, Snippet]:
    snippets = render_snippets(spec=spec, base_url=BASE + "/", values=values_for(spec) if values is None else values)
    return {s.key: s for s in snippets}


# --- runners ------------------------------------------------------------------------------------------------------


def curl_words(code: str) -> list[str]:
    """The brief's check: join continuation lines, split like a shell, keep the curl command."""
    words = shlex.split(code.replace("\\\n", " "), comments=True)
    return words[words.index("curl") :]


def run_curl(code: str, tmp_path: Path) -> list[str]:
    """Run the snippet in bash with `curl` as a function that prints its arguments, NUL-separated."""
    script = "curl() { printf '%s\\0' \"$@\"; }\n" + code
    out = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, check=True, env={})
    return out.stdout.decode().split("\0")[:-1]


def curl_request(argv: list[str]) -> dict[str, Any]:
    """{url, headers, body}: -d parsed as JSON, --form-string fields as a dict, -F file kept as text."""
    request: dict[str, Any] = {"url": None, "headers": [], "body": {}, "files": [], "output": None}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-H", "-d", "-F", "--form-string", "--output"):
            value = argv[i + 1]
            if arg == "-H":
                request["headers"].append(value)
            elif arg == "-d":
                request["body"] = json.loads(value)
            elif arg == "-F":
                request["files"].append(value)
            elif arg == "--output":
                request["output"] = value
            else:
                name, _, field_value = value.partition("=")
                request["body"][name] = field_value
            i += 2
            continue
        if arg.startswith("http"):
            request["url"] = arg
        i += 1
    return request


class FakeResponse:
    ok = True
    status_code = 200
    text = "plain text"
    content = b"RIFF....WAVE"

    def json(self) -> dict[str, Any]:
        return {
            "choices": [{"message": {"content": "hi"}, "text": "hi"}],
            "data": [{"embedding": [0.1, 0.2]}],
            "text": "hi",
        }


def run_python_requests(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    calls: list[dict[str, Any]] = []

    def post(url: str, **kwargs: Any) -> FakeResponse:
        files = kwargs.get("files")
        if files:  # read the upload while the snippet's `with open(...)` still holds it
            kwargs["files"] = {k: (name, handle.read(), kind) for k, (name, handle, kind) in files.items()}
        calls.append({"url": url, **kwargs})
        return FakeResponse()

    monkeypatch.setitem(sys.modules, "requests", types.SimpleNamespace(post=post))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "snippet.py", "exec"), {"__name__": "__main__"})
    (call,) = calls
    return call


class Recorder:
    """Stands in for the openai client: any attribute chain, called with keyword arguments, is recorded."""

    def __init__(self, calls: list[tuple[str, dict[str, Any]]], name: str = "client") -> None:
        self._calls, self._name = calls, name

    def __getattr__(self, attr: str) -> Recorder:
        return Recorder(self._calls, f"{self._name}.{attr}")

    def __call__(self, **kwargs: Any) -> Any:
        if "file" in kwargs:
            kwargs["file"] = kwargs["file"].name
        self._calls.append((self._name, kwargs))
        message = types.SimpleNamespace(content="hi", tool_calls=None)
        return types.SimpleNamespace(
            choices=[types.SimpleNamespace(message=message, text="hi")],
            data=[types.SimpleNamespace(embedding=[0.1])],
            text="hi",
            write_to_file=lambda path: Path(path).write_bytes(b"RIFF"),
        )


def run_python_openai(code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    def client(**kwargs: Any) -> Recorder:
        calls.append(("OpenAI", kwargs))
        return Recorder(calls)

    monkeypatch.setitem(sys.modules, "openai", types.SimpleNamespace(OpenAI=client))
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "snippet.py", "exec"), {"__name__": "__main__"})
    return calls


FETCH_STUB = """
globalThis.fetch = async (url, init) => {
  let body = init.body;
  if (body instanceof FormData) {
    const fields = {};
    for (const [k, v] of body.entries()) fields[k] = typeof v === "string" ? v : { file: v.name, size: v.size };
    body = fields;
  } else {
    body = JSON.parse(body);
  }
  console.log(JSON.stringify({ url, method: init.method, headers: init.headers, body }));
  const data = { choices: [{ message: { content: "hi" }, text: "hi" }], data: [{ embedding: [0.1] }], text: "hi" };
  return { ok: true, status: 200, json: async () => data, text: async () => "hi",
           arrayBuffer: async () => new TextEncoder().encode("RIFF").buffer };
};
"""


def run_javascript(code: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "snippet.mjs"
    script.write_text(FETCH_STUB + code)  # import declarations are hoisted above the stub; that is fine
    out = subprocess.run(["node", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.split("\n")[0])  # not splitlines(): U+2028 in the text is not a line end


# --- syntax -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", CASES)
def test_every_snippet_is_valid_syntax(spec: ModelSpec, tmp_path: Path) -> None:
    snippets = snippets_for(spec)
    assert list(snippets) == ["curl", "python", "openai", "javascript"]
    compile(snippets["python"].code, "requests.py", "exec")
    compile(snippets["openai"].code, "openai.py", "exec")
    assert curl_words(snippets["curl"].code)[2].startswith(BASE)
    if shutil.which("node"):
        script = tmp_path / "snippet.mjs"
        script.write_text(snippets["javascript"].code)
        check = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


@pytest.mark.parametrize("spec", CASES)
def test_every_snippet_names_base_url_model_and_token_placeholder(spec: ModelSpec) -> None:
    for snippet in snippets_for(spec).values():
        assert BASE in snippet.code, snippet.key
        assert "127.0.0.1:8000//" not in snippet.code  # the trailing slash of build_absolute_uri("/") is dropped
        assert spec.id in snippet.code, snippet.key
        assert "YOUR_API_TOKEN" in snippet.code, snippet.key
        assert f"{BASE}/tokens/" in snippet.code, snippet.key


@pytest.mark.parametrize("spec", [SPECS["smollm2-135m-instruct"], SPECS["gemma-3-270m"]], ids=["chat", "completion"])
def test_text_snippets_carry_the_playground_parameters(spec: ModelSpec) -> None:
    for snippet in snippets_for(spec).values():
        for fragment in ("0.3", "17", "99", "42", "top_k", "repetition_penalty", "END"):
            assert fragment in snippet.code, (snippet.key, fragment)


# --- the same request from every language -------------------------------------------------------------------------


@needs_bash
@needs_node
@pytest.mark.parametrize("spec", CASES)
def test_every_language_sends_the_same_request(
    spec: ModelSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "audio.wav").write_bytes(b"RIFF-fake-audio")
    snippets = snippets_for(spec)

    curl = curl_request(run_curl(snippets["curl"].code, tmp_path))
    assert curl == curl_request(curl_words(snippets["curl"].code)) | {"headers": curl["headers"]}
    assert "Authorization: Bearer YOUR_API_TOKEN" in curl["headers"]  # the shell variable expands

    python = run_python_requests(snippets["python"].code, tmp_path, monkeypatch)
    assert python["headers"] == {"Authorization": "Bearer YOUR_API_TOKEN"}
    assert python["url"] == curl["url"]

    js = run_javascript(snippets["javascript"].code, tmp_path)
    assert js["url"] == curl["url"] and js["method"] == "POST"
    assert js["headers"]["Authorization"] == "Bearer YOUR_API_TOKEN"

    (init, (method, kwargs)) = run_python_openai(snippets["openai"].code, tmp_path, monkeypatch)
    assert init == ("OpenAI", {"base_url": f"{BASE}/v1", "api_key": "YOUR_API_TOKEN"})
    sdk_only = ("extra_body", "file", "encoding_format")
    sdk_body = {k: v for k, v in kwargs.items() if k not in sdk_only} | kwargs.get("extra_body", {})
    if spec.task == "embeddings":
        assert kwargs["encoding_format"] == "float"  # the SDK would ask for base64 otherwise

    if spec.task == "speech-to-text":
        assert curl["files"] == ["file=@audio.wav;type=audio/wav"]
        assert python["files"] == {"file": ("audio.wav", b"RIFF-fake-audio", "audio/wav")}
        assert js["body"].pop("file") == {"file": "audio.wav", "size": len(b"RIFF-fake-audio")}
        assert kwargs["file"] == "audio.wav"
        body = python["data"]
    else:
        body = python["json"]
    assert curl["body"] == body == js["body"] == sdk_body
    assert body["model"] == spec.id

    sdk_method = {
        "text-to-text": "client.chat.completions.create",
        "text-completion": "client.completions.create",
        "embeddings": "client.embeddings.create",
        "text-to-speech": "client.audio.speech.create",
    }.get(spec.task, f"client.audio.{curl['url'].rsplit('/', 1)[1]}.create")
    assert method == sdk_method
    if spec.task == "text-to-speech":
        assert curl["output"] == "speech.wav"
        assert (tmp_path / "speech.wav").read_bytes().startswith(b"RIFF")


@needs_bash
def test_nasty_prompt_survives_every_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snippets = snippets_for(SPECS["smollm2-135m-instruct"])
    curl = curl_request(run_curl(snippets["curl"].code, tmp_path))
    assert curl["body"]["messages"] == [{"role": "user", "content": NASTY}]
    assert curl_request(curl_words(snippets["curl"].code))["body"]["messages"][0]["content"] == NASTY
    python = run_python_requests(snippets["python"].code, tmp_path, monkeypatch)
    assert python["json"]["messages"][0]["content"] == NASTY
    (_, (_, kwargs)) = run_python_openai(snippets["openai"].code, tmp_path, monkeypatch)
    assert kwargs["messages"][0]["content"] == NASTY
    if shutil.which("node"):
        assert run_javascript(snippets["javascript"].code, tmp_path)["body"]["messages"][0]["content"] == NASTY


def test_chat_body_has_openai_fields_and_extensions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS["smollm2-135m-instruct"]
    python = run_python_requests(snippets_for(spec)["python"].code, tmp_path, monkeypatch)
    body = python["json"]
    assert body["temperature"] == 0.3 and body["top_k"] == 17 and body["max_tokens"] == 99
    assert body["seed"] == 42 and body["stop"] == ["END", "'x'"]
    assert body["repetition_penalty"] == spec.defaults["repetition_penalty"]
    assert "stream" not in body
    (_, (_, kwargs)) = run_python_openai(snippets_for(spec)["openai"].code, tmp_path, monkeypatch)
    assert kwargs["extra_body"] == {"top_k": 17, "min_p": 0.0, "repetition_penalty": 1.1}  # not OpenAI parameters
    assert "top_k" not in kwargs and kwargs["temperature"] == 0.3


def test_unset_seed_and_empty_stop_are_left_out() -> None:
    spec = SPECS["gemma-3-270m"]
    values = {**SamplingForm(spec=spec).as_query(), "prompt": ""}
    for snippet in snippets_for(spec, values).values():
        assert "seed" not in snippet.code and "stop" not in snippet.code, snippet.key
        assert "The three primary colours are" in snippet.code  # blank prompt: an example


def test_translation_needs_the_capability() -> None:
    tiny = snippets_for(SPECS["whisper-tiny.en"], {"language": "", "task": "translate"})
    base = snippets_for(SPECS["whisper-base"], {"language": "", "task": "translate"})
    transcribe = snippets_for(SPECS["whisper-base"], {"language": "", "task": "transcribe"})
    for key in ("curl", "python", "openai", "javascript"):
        assert "translations" not in tiny[key].code and "transcriptions" in tiny[key].code.replace(".", "/")
        assert "translations" in base[key].code
        assert "translations" not in transcribe[key].code
        assert "language" not in tiny[key].code  # blank language: left out, the model detects it


def test_plain_text_transcripts_are_printed_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = SPECS["whisper-base"]
    snippets = snippets_for(spec, {"language": "en", "task": "transcribe", "response_format": "srt"})
    assert "response.text" in snippets["python"].code and "response.json()" not in snippets["python"].code
    assert "print(transcript)" in snippets["openai"].code
    assert "response.text()" in snippets["javascript"].code


def test_blank_values_fall_back_to_examples() -> None:
    embed = snippets_for(SPECS["all-minilm-l6-v2"], {"input": []})
    for text in DEFAULT_EMBEDDING_INPUT:
        assert text in embed["curl"].code
    tts = snippets_for(SPECS["piper-en-us-joe"], {"input": "", "speed": "fast"})
    assert '"speed": 1.0' in tts["curl"].code and "speed=1.0" in tts["openai"].code


def test_a_quote_in_the_base_url_cannot_break_out(tmp_path: Path) -> None:
    spec = replace(SPECS["all-minilm-l6-v2"], id="we'ird\"model")
    snippets = {s.key: s for s in render_snippets(spec=spec, base_url="http://host:8000/", values={"input": ["x"]})}
    compile(snippets["python"].code, "x", "exec")
    compile(snippets["openai"].code, "x", "exec")
    assert curl_request(curl_words(snippets["curl"].code))["body"]["model"] == "we'ird\"model"


# --- template -----------------------------------------------------------------------------------------------------


def test_code_template_has_switcher_copy_buttons_and_token_link() -> None:
    spec = SPECS["smollm2-135m-instruct"]
    html = render_to_string(
        "catalog/_code.html",
        {
            "snippets": render_snippets(spec=spec, base_url=BASE, values=values_for(spec)),
            "spec": spec,
            "token_url": "/tokens/",
        },
    )
    for key in ("curl", "python", "openai", "javascript"):
        assert f'<code id="snippet-{key}"' in html
        assert f'<button type="button" class="copy" data-copy-target="#snippet-{key}">Copy</button>' in html
        assert f'data-code-lang="{key}"' in html
    assert 'Replace <code>YOUR_API_TOKEN</code> with a token from <a href="/tokens/">your tokens page</a>' in html
    assert "</script> {{ x }}" not in html and "&lt;/script&gt; {{ x }}" in html  # user text is escaped
    assert "js/code.js" in html


# --- tools and the reply format -----------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": NASTY,
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}, "unit": {"enum": ["c", "f", None]}},
                "required": ["location"],
                "additionalProperties": False,
            },
        },
    }
]
TOOL_CHOICE = {"type": "function", "function": {"name": "get_weather"}}
SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "reply", "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
}


@needs_bash
@needs_node
def test_tools_and_reply_format_reach_every_language_as_openai_fields(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SPECS["smollm2-135m-instruct"]
    tool_values = {"tools": TOOLS, "tool_choice": TOOL_CHOICE, "parallel_tool_calls": False}
    snippets = snippets_for(spec, {**values_for(spec), **tool_values})
    curl = curl_request(run_curl(snippets["curl"].code, tmp_path))["body"]
    python = run_python_requests(snippets["python"].code, tmp_path, monkeypatch)["json"]
    js = run_javascript(snippets["javascript"].code, tmp_path)["body"]
    (_, (_, kwargs)) = run_python_openai(snippets["openai"].code, tmp_path, monkeypatch)
    for body in (curl, python, js, kwargs):  # the SDK takes them as keyword arguments, not extra_body
        assert body["tools"] == TOOLS and body["tool_choice"] == TOOL_CHOICE
        assert body["parallel_tool_calls"] is False and "response_format" not in body
    assert "tools" not in kwargs["extra_body"]
    # The reply may be calls: every snippet prints them.
    assert 'message.get("tool_calls")' in snippets["python"].code
    assert "message.tool_calls or message.content" in snippets["openai"].code
    assert "message.tool_calls ?? message.content" in snippets["javascript"].code

    snippets = snippets_for(spec, {**values_for(spec), "response_format": SCHEMA_FORMAT})
    bodies = [
        curl_request(run_curl(snippets["curl"].code, tmp_path))["body"],
        run_python_requests(snippets["python"].code, tmp_path, monkeypatch)["json"],
        run_javascript(snippets["javascript"].code, tmp_path)["body"],
        run_python_openai(snippets["openai"].code, tmp_path, monkeypatch)[1][1],
    ]
    for body in bodies:
        assert body["response_format"] == SCHEMA_FORMAT and "tools" not in body
    assert "message.tool_calls" not in snippets["openai"].code  # no tools: the text, as before


def test_completion_snippets_take_the_reply_format_but_no_tools() -> None:
    spec = SPECS["gemma-3-270m"]
    values = {**values_for(spec), "tools": TOOLS, "tool_choice": "auto", "response_format": {"type": "json_object"}}
    for snippet in snippets_for(spec, values).values():
        assert "json_object" in snippet.code and "get_weather" not in snippet.code, snippet.key


def test_tool_choice_without_tools_is_left_out() -> None:
    spec = SPECS["smollm2-135m-instruct"]
    for snippet in snippets_for(spec, {**values_for(spec), "tool_choice": "required"}).values():
        assert "tool_choice" not in snippet.code and "tool_calls" not in snippet.code, snippet.key


@pytest.mark.django_db
def test_get_code_tab_reads_the_playgrounds_tools_from_the_query(client, fake_pool) -> None:
    url = "/models/fake-chat/"
    query = {
        "tab": "code",
        "temperature": "0.3",
        "tools": json.dumps(TOOLS),
        "tool_choice": json.dumps("required"),
        "parallel_tool_calls": "true",
        "response_format": "null",
    }
    body = client.get(url, query).content.decode()
    assert "get_weather" in body and "&quot;tool_choice&quot;: &quot;required&quot;" in body
    assert "parallel_tool_calls=True" in body and "left out" not in body
    body = client.get(url, {**query, "tools": "[{"}).content.decode()
    assert "The Playground's tools and reply format are left out: tools is not valid JSON" in body
    assert "get_weather" not in body
    body = client.get(url, {**query, "tools": json.dumps([{"name": "x"}])}).content.decode()
    assert "left out: tools[0].type is required" in body
