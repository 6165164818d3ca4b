"""Get Code: copy-and-run client snippets (cURL, Python requests, the openai SDK, JavaScript fetch) for one model.

Every literal that carries user text is produced by ``json.dumps``: a JSON string is also a valid Python and
JavaScript string literal with the same value, and the cURL body is a JSON document wrapped in shell single
quotes (``'`` becomes ``'\\''``). So a prompt with quotes, ``$``, backslashes or newlines reaches the server intact.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from inference import ModelSpec

PLACEHOLDER = "YOUR_API_TOKEN"
TOKEN_PATH = "/tokens/"
DEFAULT_CHAT_PROMPT = "Write a haiku about the sea."
DEFAULT_COMPLETION_PROMPT = "The three primary colours are"
DEFAULT_EMBEDDING_INPUT = ["The cat sat on the mat.", "A kitten is resting on a rug."]
DEFAULT_SPEECH_INPUT = "Hello! This voice was synthesised by the GenAI Playground."
STT_RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
# OpenAI's own sampling fields; the SDK accepts them as keyword arguments.
OPENAI_SAMPLING = ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty")
# Our extensions to the OpenAI dialect; the openai SDK must send them through extra_body.
EXTENSIONS = ("top_k", "min_p", "repetition_penalty")
# Function calling and the reply format: OpenAI's own fields (keyword arguments in the SDK), in this order.
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls", "response_format")
# A conversation's history in a snippet: at most this many messages and characters (content and call arguments),
# the latest ones, starting at a user message.
MAX_HISTORY_MESSAGES = 40
MAX_HISTORY_CHARS = 24_000
NODE_NOTE = "// Node 20+: save as example.mjs and run `node example.mjs` (an ES module: top-level await)."


@dataclass(frozen=True)
class Snippet:
    key: str  # "curl" | "python" | "openai" | "javascript"
    label: str
    language: str  # for syntax highlighting: bash | python | javascript
    code: str


@dataclass(frozen=True)
class _Request:
    """One API call, described once and then written out in each language."""

    path: str
    body: dict[str, Any]  # JSON body, or the multipart text fields
    multipart: bool = False
    extensions: dict[str, Any] | None = None  # body fields the openai SDK sends via extra_body
    tools: bool = False  # the model may call tools: print its calls as well as its text


# --- literals -----------------------------------------------------------------------------------------------------


def _str(value: str) -> str:
    """A double-quoted string literal, valid in Python and JavaScript alike."""
    # ensure_ascii=False: astral characters stay whole (Python would read "\ud83d\ude00" as two lone surrogates).
    # U+2028/2029 are escaped so older JavaScript parsers and copy-paste through editors keep them.
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _py(value: Any, level: int = 0) -> str:
    """A Python literal for JSON-like data, indented like ruff would format it."""
    pad, inner = "    " * level, "    " * (level + 1)
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, str):
        return _str(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [f"{inner}{_str(str(k))}: {_py(v, level + 1)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list | tuple):
        flat = "[" + ", ".join(_py(v, level + 1) for v in value) + "]"
        if all(not isinstance(v, dict | list | tuple) for v in value) and len(flat) + len(pad) < 100:
            return flat
        return "[\n" + "\n".join(f"{inner}{_py(v, level + 1)}," for v in value) + f"\n{pad}]"
    raise TypeError(f"cannot write {type(value).__name__} as a literal")


def _js(value: Any, level: int = 0) -> str:
    """A JavaScript literal for JSON-like data: JSON itself, indented to sit at `level`."""
    text = json.dumps(value, indent=2, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text.replace("\n", "\n" + "  " * level)


def _sh(value: str) -> str:
    """A shell word in single quotes: nothing inside is expanded; a quote is closed, escaped and reopened."""
    return "'" + value.replace("'", "'\\''") + "'"


def _kwargs(items: dict[str, Any]) -> str:
    """Python keyword arguments, one per line, for a call indented one level."""
    return "\n".join(f"    {name}={_py(value, 1)}," for name, value in items.items())


# --- values -------------------------------------------------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        return int(number)
    return number


def _sampling(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(OpenAI fields, extension fields) as they go in the body. Unset values are left to the server's defaults."""
    openai_fields: dict[str, Any] = {}
    for name in OPENAI_SAMPLING:
        number = _number(values.get(name))
        if number is not None:
            openai_fields[name] = int(number) if name == "max_tokens" else number
    seed = _number(values.get("seed"))
    if seed is not None:
        openai_fields["seed"] = int(seed)
    stop = [str(s) for s in values.get("stop") or [] if str(s)]
    if stop:
        openai_fields["stop"] = stop
    # Always sent, so the snippet reproduces the Playground exactly (the server's defaults may differ).
    extensions: dict[str, Any] = {}
    for name in EXTENSIONS:
        number = _number(values.get(name))
        if number is not None:
            extensions[name] = int(number) if name == "top_k" else number
    return openai_fields, extensions


def _tool_fields(values: dict[str, Any], *, chat: bool) -> dict[str, Any]:
    """The Playground's tools, tool_choice, parallel_tool_calls and response_format as set (already checked:
    playground/catalog/views.py); a completion model takes only response_format."""
    names = TOOL_FIELDS if chat else ("response_format",)
    fields = {name: values[name] for name in names if values.get(name) is not None}
    if not fields.get("tools"):  # no tools: how to use them means nothing
        for name in ("tools", "tool_choice", "parallel_tool_calls"):
            fields.pop(name, None)
    return fields


def _message_size(message: dict[str, Any]) -> int:
    calls = message.get("tool_calls") or []
    return len(str(message.get("content") or "")) + sum(
        len(str(c.get("function", {}).get("arguments", ""))) for c in calls
    )


def history_window(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """The latest turns of a conversation (OpenAI messages, no system prompt) that fit in a snippet, and how many
    were left out. The window starts at a user message, so no reply or tool result is cut from what it answers;
    the last user message and what follows it are always kept."""
    size, start = 0, len(history)
    for index in range(len(history) - 1, -1, -1):
        size += _message_size(history[index])
        if len(history) - index > MAX_HISTORY_MESSAGES or size > MAX_HISTORY_CHARS:
            break
        if history[index].get("role") == "user":
            start = index
    if start == len(history):  # no user message fits: keep from the last one anyway
        start = max((i for i, m in enumerate(history) if m.get("role") == "user"), default=0)
    return history[start:], start


def _speed(value: Any) -> float:
    number = _number(value)
    return float(number) if number is not None and 0.25 <= number <= 4.0 else 1.0


def _stt_path(spec: ModelSpec, values: dict[str, Any]) -> str:
    if values.get("task") == "translate" and "translate" in spec.capabilities:
        return "/v1/audio/translations"
    return "/v1/audio/transcriptions"


def _build_request(spec: ModelSpec, values: dict[str, Any]) -> _Request:
    if spec.task in ("text-to-text", "text-completion"):
        openai_fields, extensions = _sampling(values)
        if spec.task == "text-to-text":
            messages = values.get("messages")
            if not messages:
                messages = []
                if values.get("system"):
                    messages.append({"role": "system", "content": str(values["system"])})
                messages.append({"role": "user", "content": str(values.get("prompt") or DEFAULT_CHAT_PROMPT)})
            head: dict[str, Any] = {"model": spec.id, "messages": list(messages)}
            path = "/v1/chat/completions"
        else:
            head = {"model": spec.id, "prompt": str(values.get("prompt") or DEFAULT_COMPLETION_PROMPT)}
            path = "/v1/completions"
        tools = _tool_fields(values, chat=spec.task == "text-to-text")
        return _Request(
            path=path,
            body={**head, **tools, **openai_fields, **extensions},
            extensions=extensions,
            tools="tools" in tools,
        )
    if spec.task == "embeddings":
        texts = values.get("input") or DEFAULT_EMBEDDING_INPUT
        if isinstance(texts, str):
            texts = [texts]
        return _Request(path="/v1/embeddings", body={"model": spec.id, "input": [str(t) for t in texts]})
    if spec.task == "text-to-speech":
        body = {
            "model": spec.id,
            "input": str(values.get("input") or DEFAULT_SPEECH_INPUT),
            "voice": "default",
            "speed": _speed(values.get("speed")),
            "response_format": "wav",
        }
        return _Request(path="/v1/audio/speech", body=body)
    if spec.task == "speech-to-text":
        fields: dict[str, Any] = {"model": spec.id}
        language = str(values.get("language") or "").strip()
        if language:
            fields["language"] = language
        response_format = values.get("response_format") or "json"
        fields["response_format"] = response_format if response_format in STT_RESPONSE_FORMATS else "json"
        return _Request(path=_stt_path(spec, values), body=fields, multipart=True)
    raise ValueError(f"no snippets for task {spec.task!r}")


# --- result handling per task -------------------------------------------------------------------------------------


def _python_result(spec: ModelSpec, request: _Request) -> str:
    """Lines that use `response` (a requests.Response) once the call succeeded."""
    if spec.task == "text-to-text" and request.tools:
        return (
            'message = response.json()["choices"][0]["message"]\nprint(message.get("tool_calls") or message["content"])'
        )
    if spec.task == "text-to-text":
        return 'print(response.json()["choices"][0]["message"]["content"])'
    if spec.task == "text-completion":
        return 'print(response.json()["choices"][0]["text"])'
    if spec.task == "embeddings":
        return (
            'vectors = [item["embedding"] for item in response.json()["data"]]\n'
            'print(len(vectors), "vectors of", len(vectors[0]), "dimensions")'
        )
    if spec.task == "text-to-speech":
        return 'with open("speech.wav", "wb") as out:\n    out.write(response.content)\nprint("saved speech.wav")'
    if request.body["response_format"] in ("json", "verbose_json"):
        return 'print(response.json()["text"])'
    return "print(response.text)"


def _js_result(spec: ModelSpec, request: _Request) -> str:
    if spec.task == "text-to-text" and request.tools:
        return (
            "const data = await response.json();\n"
            "const message = data.choices[0].message;\n"
            "console.log(message.tool_calls ?? message.content);"
        )
    if spec.task == "text-to-text":
        return "const data = await response.json();\nconsole.log(data.choices[0].message.content);"
    if spec.task == "text-completion":
        return "const data = await response.json();\nconsole.log(data.choices[0].text);"
    if spec.task == "embeddings":
        return (
            "const data = await response.json();\n"
            "const vectors = data.data.map((item) => item.embedding);\n"
            'console.log(vectors.length, "vectors of", vectors[0].length, "dimensions");'
        )
    if spec.task == "text-to-speech":
        return (
            'await writeFile("speech.wav", Buffer.from(await response.arrayBuffer()));\n'
            'console.log("saved speech.wav");'
        )
    if request.body["response_format"] in ("json", "verbose_json"):
        return "const data = await response.json();\nconsole.log(data.text);"
    return "console.log(await response.text());"


# --- the four languages -------------------------------------------------------------------------------------------


def _curl(spec: ModelSpec, request: _Request, base_url: str, token_url: str) -> str:
    lines = [
        f"curl -sS {_sh(base_url + request.path)}",
        '  -H "Authorization: Bearer $API_TOKEN"',
    ]
    if request.multipart:
        lines.append("  -F 'file=@audio.wav;type=audio/wav'")
        # --form-string: a value is never read as @file or <file, whatever it starts with.
        lines += [f"  --form-string {_sh(f'{name}={value}')}" for name, value in request.body.items()]
    else:
        lines.append('  -H "Content-Type: application/json"')
        lines.append(f"  -d {_sh(json.dumps(request.body, indent=2, ensure_ascii=False))}")
    if spec.task == "text-to-speech":
        lines.append("  --output speech.wav")
    header = [f"# Create a token at {token_url}", f"API_TOKEN={_sh(PLACEHOLDER)}", ""]
    return "\n".join(header) + " \\\n".join(lines) + "\n"


def _python_requests(spec: ModelSpec, request: _Request, base_url: str, token_url: str) -> str:
    head = [
        "import requests",
        "",
        f"API_TOKEN = {_str(PLACEHOLDER)}  # create one at {token_url}",
        f"BASE_URL = {_str(base_url)}",
        "",
    ]
    if request.multipart:
        call = [
            'with open("audio.wav", "rb") as audio:',
            "    response = requests.post(",
            f'        f"{{BASE_URL}}{request.path}",',
            '        headers={"Authorization": f"Bearer {API_TOKEN}"},',
            '        files={"file": ("audio.wav", audio, "audio/wav")},',
            f"        data={_py(request.body, 2)},",
            "        timeout=300,",
            "    )",
        ]
    else:
        call = [
            "response = requests.post(",
            f'    f"{{BASE_URL}}{request.path}",',
            '    headers={"Authorization": f"Bearer {API_TOKEN}"},',
            f"    json={_py(request.body, 1)},",
            "    timeout=300,",
            ")",
        ]
    tail = ["if not response.ok:", '    raise SystemExit(f"{response.status_code}: {response.text}")']
    return "\n".join([*head, *call, *tail, _python_result(spec, request)]) + "\n"


def _python_openai(spec: ModelSpec, request: _Request, base_url: str, token_url: str) -> str:
    head = [
        "from openai import OpenAI",
        "",
        f"API_TOKEN = {_str(PLACEHOLDER)}  # create one at {token_url}",
        f"BASE_URL = {_str(base_url)}",
        "",
        'client = OpenAI(base_url=f"{BASE_URL}/v1", api_key=API_TOKEN)',
    ]
    body = dict(request.body)
    if spec.task in ("text-to-text", "text-completion"):
        extensions = request.extensions or {}
        kwargs = {k: v for k, v in body.items() if k not in extensions}
        if extensions:
            kwargs["extra_body"] = extensions  # top_k and repetition_penalty are not OpenAI parameters
        method = "client.chat.completions.create" if spec.task == "text-to-text" else "client.completions.create"
        result = (
            "completion.choices[0].message.content" if spec.task == "text-to-text" else "completion.choices[0].text"
        )
        lines = [f"completion = {method}(", _kwargs(kwargs), ")", f"print({result})"]
        if request.tools:  # the reply may be calls instead of text
            lines[-1:] = ["message = completion.choices[0].message", "print(message.tool_calls or message.content)"]
    elif spec.task == "embeddings":
        lines = [
            "result = client.embeddings.create(",
            _kwargs(body),
            # the SDK would otherwise ask for base64 and decode it itself
            '    encoding_format="float",',
            ")",
            "vectors = [item.embedding for item in result.data]",
            'print(len(vectors), "vectors of", len(vectors[0]), "dimensions")',
        ]
    elif spec.task == "text-to-speech":
        lines = ["speech = client.audio.speech.create(", _kwargs(body), ")", 'speech.write_to_file("speech.wav")']
        lines.append('print("saved speech.wav")')
    else:
        translations = request.path.endswith("/translations")
        kwargs = {"model": body["model"]}
        language = body.get("language")
        if language and not translations:
            kwargs["language"] = language
        kwargs["response_format"] = body["response_format"]
        if language and translations:
            kwargs["extra_body"] = {"language": language}  # the SDK's translations.create has no language argument
        method = "translations" if translations else "transcriptions"
        json_result = body["response_format"] in ("json", "verbose_json")
        lines = [
            "# translations.create may print a DeprecationWarning in recent openai versions; it works here."
            if translations
            else "",
            'with open("audio.wav", "rb") as audio:',
            f"    transcript = client.audio.{method}.create(",
            "        file=audio,",
            "\n".join(f"        {name}={_py(value, 2)}," for name, value in kwargs.items()),
            "    )",
            # text, srt and vtt come back as a plain string
            "print(transcript.text)" if json_result else "print(transcript)",
        ]
    return "\n".join([*head, *(line for line in lines if line)]) + "\n"


def _javascript(spec: ModelSpec, request: _Request, base_url: str, token_url: str) -> str:
    head = [NODE_NOTE]
    if spec.task == "speech-to-text":
        head.append('import { readFile } from "node:fs/promises";')
    elif spec.task == "text-to-speech":
        head.append('import { writeFile } from "node:fs/promises";')
    else:
        head[0] = NODE_NOTE[:-1] + ", or paste into a browser console."
    head += [
        "",
        f"const API_TOKEN = {_str(PLACEHOLDER)}; // create one at {token_url}",
        f"const BASE_URL = {_str(base_url)};",
        "",
    ]
    if request.multipart:
        form = [
            "const form = new FormData();",
            'form.append("file", new Blob([await readFile("audio.wav")], { type: "audio/wav" }), "audio.wav");',
            *(f"form.append({_str(name)}, {_str(str(value))});" for name, value in request.body.items()),
            "",
        ]
        call = [
            *form,
            f"const response = await fetch(`${{BASE_URL}}{request.path}`, {{",
            '  method: "POST",',
            "  headers: { Authorization: `Bearer ${API_TOKEN}` },",
            "  body: form, // fetch sets the multipart Content-Type with its boundary",
            "});",
        ]
    else:
        call = [
            f"const response = await fetch(`${{BASE_URL}}{request.path}`, {{",
            '  method: "POST",',
            "  headers: {",
            "    Authorization: `Bearer ${API_TOKEN}`,",
            '    "Content-Type": "application/json",',
            "  },",
            f"  body: JSON.stringify({_js(request.body, 1)}),",
            "});",
        ]
    tail = [
        "if (!response.ok) throw new Error(`${response.status}: ${await response.text()}`);",
        _js_result(spec, request),
    ]
    return "\n".join([*head, *call, *tail]) + "\n"


def render_snippets(*, spec: ModelSpec, base_url: str, values: dict[str, Any]) -> list[Snippet]:
    """The Get Code snippets for `spec` with the current Playground `values`, against the server at `base_url`.

    `values` per task: text models take ``SamplingForm.as_query()`` plus an optional ``prompt`` (``messages`` or
    ``system`` for chat) and, when set, ``response_format`` (chat also ``tools``, ``tool_choice`` and
    ``parallel_tool_calls``), in OpenAI's shapes; embeddings ``input`` (list of texts); text-to-speech ``input``
    and ``speed``; speech-to-text ``language`` (may be blank), ``task`` (transcribe | translate) and optionally
    ``response_format``.
    Blank values fall back to example text.
    """
    base = base_url.rstrip("/")
    token_url = base + TOKEN_PATH
    request = _build_request(spec, values)
    return [
        Snippet("curl", "cURL", "bash", _curl(spec, request, base, token_url)),
        Snippet("python", "Python (requests)", "python", _python_requests(spec, request, base, token_url)),
        Snippet("openai", "Python (openai SDK)", "python", _python_openai(spec, request, base, token_url)),
        Snippet("javascript", "JavaScript (fetch)", "javascript", _javascript(spec, request, base, token_url)),
    ]
