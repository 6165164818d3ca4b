// The Playground: chat and plain completion streamed over the ws/chat/ socket (protocol in
// playground/chat/consumers.py). Model text only ever reaches the page through textContent
// (directly, or through markdown.js, which builds DOM nodes the same way).
"use strict";

(function () {
  // --- Shared -----------------------------------------------------------------------------

  // Confirm before destructive forms (the conversation list's Delete).
  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });

  function panelParams() {
    const form = document.getElementById("params");
    const params = {};
    if (!form) return params;
    for (const [name, value] of new FormData(form)) params[name] = value;
    return params;
  }

  function metaText(frame) {
    const parts = [];
    if (frame.usage) {
      parts.push(frame.usage.prompt_tokens + " prompt + " + frame.usage.completion_tokens + " completion tokens");
    }
    if (frame.ttft_ms !== null && frame.ttft_ms !== undefined) parts.push("TTFT " + Math.round(frame.ttft_ms) + " ms");
    if (frame.tokens_per_second !== null && frame.tokens_per_second !== undefined) {
      parts.push(Number(frame.tokens_per_second).toFixed(1) + " tok/s");
    }
    if (frame.finish_reason) parts.push("finish: " + frame.finish_reason);
    const dropped = frame.dropped_messages || 0;
    if (dropped) parts.push(dropped + " oldest message" + (dropped === 1 ? "" : "s") + " left out to fit the context");
    return parts.join(" · ");
  }

  // One socket per page, reopened with back-off; `onFrame` gets every parsed frame.
  // A status line: errors are announced as alerts, everything else politely.
  function showStatus(element, text, isError) {
    element.textContent = text || "";
    element.classList.toggle("error", Boolean(isError));
    element.setAttribute("role", isError ? "alert" : "status");
  }

  function openSocket(onFrame, onState) {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + "/ws/chat/";
    let socket = null;
    let delay = 500;
    const connect = () => {
      socket = new WebSocket(url);
      socket.addEventListener("open", () => {
        delay = 500;
        onState(true);
      });
      socket.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        onFrame(frame);
      });
      socket.addEventListener("close", () => {
        onState(false);
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      });
    };
    connect();
    return {
      send(frame) {
        if (!socket || socket.readyState !== WebSocket.OPEN) return false;
        socket.send(JSON.stringify(frame));
        return true;
      },
    };
  }

  function enterSends(textarea, form) {
    textarea.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
  }

  // --- Tools and JSON mode ---------------------------------------------------------------
  // The panel's function list and reply format, checked here for shape (the server checks them again, exactly
  // as /v1 does, and its refusals come back as error frames) and sent with every chat frame.

  const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/; // OpenAI's rule for a function's name
  const FUNCTION_KEYS = ["name", "description", "parameters", "strict"];
  const CHOICES = ["auto", "none", "required"];
  const EXAMPLE_SCHEMA = {
    type: "object",
    properties: { answer: { type: "string" } },
    required: ["answer"],
  };
  const EXAMPLE_TOOLS = [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Get the current weather in a city",
        parameters: {
          type: "object",
          properties: { location: { type: "string", description: "The city, e.g. Paris" } },
          required: ["location"],
        },
      },
    },
  ];
  let toolsPanel = null; // set by initToolsPanel on the chat page

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function prettyJson(text) {
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch (err) {
      return text; // a call cut short: its arguments as far as they got
    }
  }

  // The function list in the editor: {tools} in OpenAI's shape, or {problem} naming what is wrong and where.
  function checkTools(text) {
    if (!text.trim()) return { tools: [] };
    let data;
    try {
      data = JSON.parse(text);
    } catch (err) {
      return { problem: "Tools: not valid JSON (" + err.message + ")." };
    }
    if (isObject(data)) data = [data];
    if (!Array.isArray(data)) return { problem: "Tools must be a JSON list of function definitions: [{...}, ...]." };
    const tools = [];
    const seen = new Set();
    for (let i = 0; i < data.length; i++) {
      const item = data[i];
      let where = "Tool " + (i + 1);
      if (!isObject(item)) return { problem: where + " must be an object." };
      let fn = item;
      if ("type" in item || "function" in item) {
        if (item.type !== "function") return { problem: where + ': "type" must be "function".' };
        const extra = Object.keys(item).find((key) => key !== "type" && key !== "function");
        if (extra) return { problem: where + ': unknown key "' + extra + '" (only "type" and "function").' };
        if (!isObject(item.function)) return { problem: where + ': "function" must be an object with a "name".' };
        fn = item.function;
      }
      if (typeof fn.name === "string" && fn.name) where += " (" + fn.name + ")";
      const unknown = Object.keys(fn).find((key) => !FUNCTION_KEYS.includes(key));
      if (unknown) {
        return { problem: where + ': unknown key "' + unknown + '" (a function has ' + FUNCTION_KEYS.join(", ") + ")." };
      }
      if (typeof fn.name !== "string" || !FUNCTION_NAME.test(fn.name)) {
        return { problem: where + ': "name" must be 1 to 64 letters, digits, _ or -.' };
      }
      if (seen.has(fn.name)) return { problem: where + ': the name "' + fn.name + '" is used twice.' };
      seen.add(fn.name);
      if (fn.description !== undefined && fn.description !== null && typeof fn.description !== "string") {
        return { problem: where + ': "description" must be a string.' };
      }
      if (fn.parameters !== undefined && fn.parameters !== null && !isObject(fn.parameters)) {
        return { problem: where + ': "parameters" must be a JSON Schema object, e.g. {"type": "object"}.' };
      }
      if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== "boolean") {
        return { problem: where + ': "strict" must be true or false.' };
      }
      tools.push({ type: "function", function: fn });
    }
    return { tools: tools };
  }

  function checkSchema(name, text) {
    if (!name.trim()) return { problem: "JSON schema: give the schema a name." };
    if (!text.trim()) return { problem: "JSON schema: write the schema the reply must match." };
    let schema;
    try {
      schema = JSON.parse(text);
    } catch (err) {
      return { problem: "JSON schema: not valid JSON (" + err.message + ")." };
    }
    if (!isObject(schema)) return { problem: 'JSON schema: the schema must be a JSON object, e.g. {"type": "object"}.' };
    return { schema: schema };
  }

  function initToolsPanel() {
    const panel = document.getElementById("tools-panel");
    if (!panel) return null;
    const editor = document.getElementById("tools-json");
    const toolsCheck = document.getElementById("tools-check");
    const choice = document.getElementById("tool-choice");
    const parallel = document.getElementById("parallel-tool-calls");
    const format = document.getElementById("response-format");
    const schemaFields = document.getElementById("schema-fields");
    const schemaName = document.getElementById("schema-name");
    const schemaEditor = document.getElementById("schema-json");
    const schemaCheck = document.getElementById("schema-check");
    let wanted = choice.dataset.initial || "auto"; // the choice to keep while the list is being edited

    function note(element, text, isError) {
      element.textContent = text;
      element.classList.toggle("error", Boolean(isError));
      element.classList.toggle("ok", Boolean(text) && !isError);
    }

    // The picker offers auto, none, required and each function by name.
    function fillChoices(tools) {
      const names = tools.map((tool) => tool.function.name);
      for (const option of [...choice.options]) {
        if (!CHOICES.includes(option.value)) option.remove();
      }
      for (const name of names) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = "call " + name;
        choice.appendChild(option);
      }
      choice.value = [...CHOICES, ...names].includes(wanted) ? wanted : "auto";
    }

    function refreshTools() {
      const result = checkTools(editor.value);
      editor.setAttribute("aria-invalid", result.problem ? "true" : "false");
      if (result.problem) {
        note(toolsCheck, result.problem, true);
        return result;
      }
      const names = result.tools.map((tool) => tool.function.name);
      note(toolsCheck, names.length ? names.length + " function" + (names.length > 1 ? "s" : "") + ": " + names.join(", ") : "");
      fillChoices(result.tools);
      return result;
    }

    function refreshSchema() {
      schemaFields.hidden = format.value !== "json_schema";
      if (format.value !== "json_schema") {
        note(schemaCheck, "");
        return {};
      }
      const result = checkSchema(schemaName.value, schemaEditor.value);
      schemaEditor.setAttribute("aria-invalid", result.problem ? "true" : "false");
      note(schemaCheck, result.problem || (schemaEditor.value.trim() ? "Valid JSON." : ""), Boolean(result.problem));
      return result;
    }

    // The frame's tool fields as the panel stands ({fields}, or {problem}), leaving the panel's notes alone (the
    // context meter reads them on every count; a refusal shown beside the fields stays).
    function peek() {
      const tools = checkTools(editor.value);
      if (tools.problem) return { problem: tools.problem };
      const fields = { tools: null, tool_choice: null, parallel_tool_calls: null, response_format: null };
      if (tools.tools.length) {
        fields.tools = tools.tools;
        fields.tool_choice = CHOICES.includes(choice.value)
          ? choice.value
          : { type: "function", function: { name: choice.value } };
        fields.parallel_tool_calls = parallel.checked;
      }
      if (format.value === "json_object") {
        fields.response_format = { type: "json_object" };
      } else if (format.value === "json_schema") {
        const schema = checkSchema(schemaName.value, schemaEditor.value);
        if (schema.problem) return { problem: schema.problem };
        fields.response_format = { type: "json_schema", json_schema: { name: schemaName.value.trim(), schema: schema.schema } };
      }
      return { fields: fields };
    }

    // The frame's tool fields ({fields}), or {problem, focus} for what the user must fix first (said beside it).
    function check() {
      const tools = refreshTools();
      if (tools.problem) return { problem: tools.problem, focus: editor };
      if (format.value === "json_schema") {
        const schema = refreshSchema();
        if (schema.problem) return { problem: schema.problem, focus: schemaEditor.value.trim() ? schemaEditor : schemaName };
      }
      return peek();
    }

    // Show a problem where it is: open the panel and move to the field.
    function reveal(problem) {
      panel.open = true;
      if (problem.focus) problem.focus.focus();
    }

    // A refusal from the server about these fields: say it beside them too.
    function serverProblem(frame) {
      const param = frame.param || "";
      if (/^(tools|tool_choice|parallel_tool_calls)/.test(param)) {
        note(toolsCheck, frame.message, true);
        reveal({ focus: param.startsWith("tool_choice") ? choice : editor });
      } else if (param.startsWith("response_format")) {
        if (format.value === "json_schema") note(schemaCheck, frame.message, true);
        else note(toolsCheck, frame.message, true);
        reveal({ focus: format.value === "json_schema" ? schemaEditor : format });
      }
    }

    editor.addEventListener("input", refreshTools);
    choice.addEventListener("change", () => {
      wanted = choice.value;
    });
    format.addEventListener("change", () => {
      // A schema to start from, rather than an error about an empty one.
      if (format.value === "json_schema" && !schemaEditor.value.trim()) {
        schemaEditor.value = JSON.stringify(EXAMPLE_SCHEMA, null, 2);
      }
      refreshSchema();
    });
    schemaEditor.addEventListener("input", refreshSchema);
    schemaName.addEventListener("input", refreshSchema);
    document.getElementById("tools-example").addEventListener("click", () => {
      editor.value = JSON.stringify(EXAMPLE_TOOLS, null, 2);
      refreshTools();
      editor.focus();
    });
    format.value = format.dataset.initial || "text";
    if (format.selectedIndex < 0) format.value = "text";
    refreshTools();
    refreshSchema();
    return { check: check, peek: peek, reveal: reveal, serverProblem: serverProblem };
  }

  // --- Chat -------------------------------------------------------------------------------

  function initChat(app) {
    const log = document.getElementById("chat-log");
    const form = document.getElementById("chat-form");
    const input = document.getElementById("chat-input");
    const system = document.getElementById("chat-system");
    const sendButton = document.getElementById("chat-send");
    const stopButton = document.getElementById("chat-stop");
    const regenButton = document.getElementById("chat-regenerate");
    const status = document.getElementById("chat-status");
    const title = document.getElementById("chat-title");
    const picker = document.getElementById("chat-model");
    const overflowPicker = document.getElementById("chat-overflow");
    const contextBar = document.getElementById("context-bar");
    const meter = document.getElementById("context-meter");
    const meterText = document.getElementById("context-text");
    const raw = new WeakMap(); // message element -> its text as written (copy and re-render)
    let conversation = app.dataset.conversation ? parseInt(app.dataset.conversation, 10) : null;
    let current = null; // the assistant message being streamed (a new one, or the one a Continue extends)
    // What a sent turn changed on the page, until the server says it was saved ("conversation" frame); an error
    // before that puts the page back: {added, detached, continued, text, giveBack, onSaved}.
    let pending = null;
    toolsPanel = initToolsPanel();
    let busy = false;
    let connected = false;
    let renderQueued = false;
    let countSeq = 0; // the latest count frame sent: older readings are ignored
    let countTimer = null;
    let refocus = null; // after a path frame: the version button to give the focus back to

    function setStatus(text, isError) {
      showStatus(status, text, isError);
    }

    function modelId() {
      return picker ? picker.value : app.dataset.model;
    }

    function setBusy(value) {
      busy = value;
      sendButton.disabled = value || !connected;
      stopButton.classList.toggle("hidden", !value);
      regenButton.disabled = value || !connected || conversation === null || !log.querySelector(".msg-user");
      for (const button of log.querySelectorAll(".msg-action")) {
        button.disabled = value || !connected || button.dataset.edge === "true";
      }
    }

    function renderBody(message) {
      const body = message.querySelector(".msg-body");
      const text = raw.get(message) || "";
      if (message.dataset.role === "assistant" && window.renderMarkdownInto) {
        window.renderMarkdownInto(body, text);
      } else {
        body.textContent = text;
      }
    }

    // `call`: for a tool result, the call it answers ({id, name}); `model`: a reply's model (default: the picker's).
    function makeMessage(role, text, call, model) {
      const message = document.createElement("article");
      message.className = "msg msg-" + role;
      message.dataset.role = role;
      const head = document.createElement("div");
      head.className = "msg-head";
      const who = document.createElement("span");
      who.className = "msg-role";
      who.textContent = { assistant: "Assistant", tool: "Result of " }[role] || "You";
      if (role === "assistant") {
        const name = document.createElement("span");
        name.className = "muted";
        name.textContent = " · " + (model || modelId());
        who.appendChild(name);
      } else if (role === "tool") {
        message.dataset.toolCallId = call.id;
        const name = document.createElement("code");
        name.textContent = call.name || "a tool";
        const id = document.createElement("span");
        id.className = "muted";
        id.textContent = " · " + call.id;
        who.append(name, " ", id);
      }
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "msg-copy";
      copy.dataset.copyMessage = "";
      copy.textContent = "Copy";
      head.append(who, copy);
      const body = document.createElement("div");
      body.className = "msg-body";
      message.append(head, body);
      if (role === "assistant") {
        const meta = document.createElement("div");
        meta.className = "msg-meta muted";
        message.appendChild(meta);
      }
      raw.set(message, text);
      renderBody(message);
      log.appendChild(message);
      return message;
    }

    function scrollToEnd() {
      log.scrollTop = log.scrollHeight;
    }

    // --- Versions and message actions: ‹n/m›, Edit, Regenerate, Continue, Delete (built here for every message,
    // from its data-message-id, data-versions and data-finish).

    function actionButton(label, action, ariaLabel) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "msg-action";
      button.dataset.action = action;
      button.textContent = label;
      if (ariaLabel) button.setAttribute("aria-label", ariaLabel);
      return button;
    }

    function decorate(message) {
      const head = message.querySelector(".msg-head");
      const old = head.querySelector(".msg-tools");
      if (old) old.remove();
      const id = message.dataset.messageId;
      const role = message.dataset.role;
      if (!id || message.classList.contains("streaming") || message.classList.contains("editing")) return;
      const tools = document.createElement("div");
      tools.className = "msg-tools";
      const versions = (message.dataset.versions || id).split(",").filter(Boolean);
      const index = versions.indexOf(id);
      if (versions.length > 1 && index >= 0) {
        const nav = document.createElement("span");
        nav.className = "msg-versions";
        const previous = actionButton("‹", "version", "Previous version");
        const next = actionButton("›", "version", "Next version");
        previous.dataset.target = versions[index - 1] || "";
        next.dataset.target = versions[index + 1] || "";
        previous.dataset.edge = String(index === 0);
        next.dataset.edge = String(index === versions.length - 1);
        const counter = document.createElement("span");
        counter.className = "msg-version";
        counter.textContent = index + 1 + "/" + versions.length;
        counter.setAttribute("aria-label", "Version " + (index + 1) + " of " + versions.length);
        nav.append(previous, counter, next);
        tools.appendChild(nav);
      }
      if (role === "user") {
        tools.appendChild(actionButton("Edit", "edit", "Edit this message"));
      } else if (role === "assistant") {
        const last = log.lastElementChild === message;
        if (last && message.dataset.finish === "length" && !message.querySelector(".tool-call")) {
          tools.appendChild(actionButton("Continue", "continue", "Continue this reply"));
        }
        tools.appendChild(actionButton("Regenerate", "regenerate", "Generate this reply again"));
      }
      if (role !== "tool") tools.appendChild(actionButton("Delete", "delete", "Delete this message"));
      head.insertBefore(tools, head.querySelector(".msg-copy"));
    }

    function decorateAll() {
      for (const message of log.querySelectorAll(".msg")) decorate(message);
      setBusy(busy);
    }

    function setSaved(message, data) {
      message.dataset.messageId = String(data.id);
      message.dataset.versions = (data.versions || [data.id]).join(",");
      if (data.role === "assistant" || data.finish_reason !== undefined) message.dataset.finish = data.finish_reason || "";
    }

    // The branch the server shows (after a version was picked or a message deleted), drawn from its data.
    function renderPath(messages) {
      closeEditors();
      log.replaceChildren();
      for (const data of messages) {
        const call = data.role === "tool" ? { id: data.tool_call_id, name: data.tool_name } : null;
        const message = makeMessage(data.role, data.content, call, data.model_id);
        setSaved(message, data);
        if (data.role === "assistant") {
          for (const item of data.tool_calls || []) addCall(message, item);
          message.querySelector(".msg-meta").textContent = metaText(data);
        }
      }
      const last = log.lastElementChild;
      if (last && last.dataset.role === "assistant") offerResults(last);
      decorateAll();
      if (refocus) {
        const target = log.querySelector('.msg[data-message-id="' + CSS.escape(refocus.id) + '"]');
        const buttons = target ? [...target.querySelectorAll(".msg-versions .msg-action")] : [];
        const button = buttons.find((b) => b.getAttribute("aria-label") === refocus.label && !b.disabled) ||
          buttons.find((b) => !b.disabled);
        if (button) button.focus();
        refocus = null;
      }
    }

    // --- A turn in flight: what it changed on the page, put back if the server refuses it before saving it.

    function beginTurn(change) {
      pending = {
        added: change.added || [],
        detached: change.detached || [],
        continued: change.continued || null,
        text: change.continued ? raw.get(change.continued) : null,
        giveBack: change.giveBack || null,
        onSaved: change.onSaved || null,
      };
    }

    function confirmTurn(saved) {
      if (!pending) return;
      pending.added.forEach((message, index) => {
        if (saved[index]) setSaved(message, saved[index]);
      });
      if (pending.onSaved) pending.onSaved();
      pending = null;
    }

    function undoTurn() {
      if (!pending) return;
      const turn = pending;
      pending = null;
      for (const message of turn.added) message.remove();
      for (const message of turn.detached) log.appendChild(message);
      if (turn.continued) {
        raw.set(turn.continued, turn.text);
        renderBody(turn.continued);
        turn.continued.classList.remove("streaming");
      }
      if (turn.giveBack) turn.giveBack();
    }

    // Remove a message and everything after it from the page (kept, to put back).
    function detachFrom(message) {
      const removed = [];
      let node = message;
      while (node) {
        const next = node.nextElementSibling;
        removed.push(node);
        node.remove();
        node = next;
      }
      return removed;
    }

    // What every turn frame carries besides its own fields; null when the Tools panel has a problem (shown).
    function turnFields() {
      const tools = toolsPanel ? toolsPanel.check() : { fields: {} };
      if (tools.problem) {
        setStatus(tools.problem, true);
        toolsPanel.reveal(tools);
        return null;
      }
      const fields = { model: modelId(), system: system.value, params: panelParams(), ...tools.fields };
      if (overflowPicker) fields.overflow = overflowPicker.value;
      return fields;
    }

    function notConnected() {
      setStatus("Not connected yet; try again in a moment.", true);
    }

    function startReply() {
      current = makeMessage("assistant", "");
      current.classList.add("streaming");
      setStatus("Sending…");
      setBusy(true);
      scrollToEnd();
    }

    // --- Edit: the message's text in a box; saving sends it as a new version, answered from there.

    function closeEditors() {
      for (const editor of log.querySelectorAll(".msg-editor")) {
        const message = editor.closest(".msg");
        editor.remove();
        message.querySelector(".msg-body").hidden = false;
        message.classList.remove("editing");
        decorate(message);
      }
    }

    function openEditor(message, text) {
      closeEditors();
      const editor = document.createElement("form");
      editor.className = "msg-editor";
      const label = document.createElement("label");
      const area = document.createElement("textarea");
      area.id = "edit-" + message.dataset.messageId;
      area.rows = Math.min(8, Math.max(2, text.split("\n").length));
      area.value = text;
      label.htmlFor = area.id;
      label.className = "visually-hidden";
      label.textContent = "Edit your message";
      const buttons = document.createElement("div");
      buttons.className = "chat-buttons";
      const save = document.createElement("button");
      save.type = "submit";
      save.className = "primary";
      save.textContent = "Save and send";
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.textContent = "Cancel";
      buttons.append(save, cancel);
      editor.append(label, area, buttons);
      message.classList.add("editing");
      message.querySelector(".msg-body").hidden = true;
      decorate(message);
      message.insertBefore(editor, message.querySelector(".msg-body").nextSibling);
      const close = () => {
        closeEditors();
        const edit = message.querySelector('.msg-action[data-action="edit"]');
        if (edit) edit.focus();
      };
      cancel.addEventListener("click", close);
      area.addEventListener("keydown", (event) => {
        if (event.key === "Escape") {
          event.preventDefault();
          close();
        } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          editor.requestSubmit();
        }
      });
      editor.addEventListener("submit", (event) => {
        event.preventDefault();
        sendEdit(message, area.value);
      });
      area.focus();
      area.setSelectionRange(area.value.length, area.value.length);
    }

    function sendEdit(message, text) {
      if (!text.trim() || busy) return;
      const fields = turnFields();
      if (!fields) return;
      const id = parseInt(message.dataset.messageId, 10);
      if (!socket.send({ type: "edit", conversation: conversation, message: id, content: text, ...fields })) {
        notConnected();
        return;
      }
      closeEditors();
      dropResultForms();
      const detached = detachFrom(message);
      const edited = makeMessage("user", text);
      beginTurn({ added: [edited], detached: detached, giveBack: () => openEditor(message, text) });
      startReply();
    }

    function regenerate(message) {
      if (busy || conversation === null) return;
      const fields = turnFields();
      if (!fields) return;
      const frame = { type: "regenerate", conversation: conversation, ...fields };
      if (message && message.dataset.messageId) frame.message = parseInt(message.dataset.messageId, 10);
      if (!socket.send(frame)) {
        notConnected();
        return;
      }
      closeEditors();
      dropResultForms();
      beginTurn({ detached: message ? detachFrom(message) : [] });
      startReply();
    }

    function continueReply(message) {
      if (busy || conversation === null) return;
      const fields = turnFields();
      if (!fields) return;
      const id = parseInt(message.dataset.messageId, 10);
      if (!socket.send({ type: "continue", conversation: conversation, message: id, ...fields })) {
        notConnected();
        return;
      }
      closeEditors();
      beginTurn({ continued: message });
      current = message;
      current.classList.add("streaming");
      decorate(current);
      setStatus("Sending…");
      setBusy(true);
    }

    function deleteMessage(message) {
      const following = detachCount(message);
      const question =
        message.dataset.role === "user"
          ? "Delete this message and its reply? The conversation after them stays."
          : "Delete this reply" + (following ? " and the " + following + " message" + (following === 1 ? "" : "s") + " after it" : "") + "?";
      if (!window.confirm(question)) return;
      const id = parseInt(message.dataset.messageId, 10);
      if (!socket.send({ type: "delete", conversation: conversation, message: id })) notConnected();
    }

    function detachCount(message) {
      let count = 0;
      for (let node = message.nextElementSibling; node; node = node.nextElementSibling) count += 1;
      return count;
    }

    function selectVersion(button) {
      const target = button.dataset.target;
      if (!target || conversation === null) return;
      refocus = { id: target, label: button.getAttribute("aria-label") };
      if (!socket.send({ type: "select", conversation: conversation, message: parseInt(target, 10) })) {
        refocus = null;
        notConnected();
      }
    }

    // --- The context meter: the server counts the prompt (history, draft) with the model's own template.

    const maxBox = document.getElementById("id_max_tokens");
    const maxRange = document.getElementById("id_max_tokens_range");

    function scheduleCount(delay) {
      window.clearTimeout(countTimer);
      countTimer = window.setTimeout(sendCount, delay === undefined ? 350 : delay);
    }

    function sendCount() {
      if (!connected || !contextBar) return;
      const tools = toolsPanel ? toolsPanel.peek() : { fields: {} };
      countSeq += 1;
      const frame = {
        type: "count",
        seq: countSeq,
        model: modelId(),
        conversation: conversation,
        system: system.value,
        content: input.value,
        params: { max_tokens: maxBox ? maxBox.value : "" },
        ...(tools.problem ? {} : tools.fields),
      };
      if (overflowPicker) frame.overflow = overflowPicker.value;
      socket.send(frame);
    }

    function tokens(n) {
      return Number(n).toLocaleString("en-US");
    }

    function showReading(reading) {
      if (reading.error) {
        meterText.textContent = "Context: " + reading.error;
        contextBar.dataset.state = "";
        return;
      }
      const used = reading.prompt_tokens + reading.max_tokens;
      // Chromium colours a meter by its regions: fine below three quarters, then a warning, full when over.
      meter.max = reading.n_ctx;
      meter.optimum = 0;
      meter.low = Math.round(reading.n_ctx * 0.75);
      meter.high = reading.n_ctx - 1;
      meter.value = Math.min(used, reading.n_ctx);
      const parts = [];
      if (reading.draft_tokens) parts.push("Message: " + tokens(reading.draft_tokens) + " tokens");
      parts.push(
        "Context: " + tokens(reading.prompt_tokens) + " + " + tokens(reading.max_tokens) + " max tokens of " + tokens(reading.n_ctx)
      );
      let state = "";
      if (!reading.fits && reading.dropped) {
        const n = reading.dropped;
        parts.push("the " + n + " oldest message" + (n === 1 ? "" : "s") + " will be left out");
        state = "warn";
      } else if (!reading.fits) {
        parts.push(
          reading.overflow === "refuse"
            ? "too long: it would be refused (shorten it, lower max tokens or leave out the oldest turns)"
            : "too long even with the oldest turns left out: shorten it or lower max tokens"
        );
        state = "over";
      }
      meterText.textContent = parts.join(" · ");
      contextBar.dataset.state = state;
      // The Max tokens slider offers what a prompt can use: the context minus the prompt (or, when the oldest
      // turns may be left out, minus the shortest prompt: the system prompt and the last message). A message too
      // long for any max tokens leaves it as it was: the meter says what to shorten.
      const prompt = reading.overflow === "drop_oldest" ? reading.min_prompt_tokens : reading.prompt_tokens;
      const room = reading.n_ctx - prompt;
      if (room >= 1) {
        for (const element of [maxRange, maxBox]) {
          if (element) element.max = String(room);
        }
      }
    }

    // --- Tool calls: a card per call (name and arguments, as text), and a result box per call to answer it.

    function callCard(call) {
      const card = document.createElement("section");
      card.className = "tool-call";
      card.dataset.toolCallId = call.id;
      card.dataset.toolName = call.name;
      card.setAttribute("aria-label", "Call of " + call.name);
      const head = document.createElement("div");
      head.className = "tool-call-head";
      const label = document.createElement("span");
      label.className = "tool-call-label";
      label.textContent = "Calls";
      const name = document.createElement("code");
      name.className = "tool-call-name";
      name.textContent = call.name;
      const id = document.createElement("span");
      id.className = "muted tool-call-id";
      id.textContent = call.id;
      head.append(label, " ", name, " ", id);
      const args = document.createElement("pre");
      args.className = "tool-call-args";
      args.textContent = prettyJson(call.arguments);
      card.append(head, args);
      return card;
    }

    function addCall(message, call) {
      let box = message.querySelector(".tool-calls");
      if (!box) {
        box = document.createElement("div");
        box.className = "tool-calls";
        message.insertBefore(box, message.querySelector(".msg-meta"));
      }
      if (!box.querySelector('[data-tool-call-id="' + CSS.escape(call.id) + '"]')) box.appendChild(callCard(call));
    }

    function dropResultForms() {
      for (const open of log.querySelectorAll(".tool-results")) open.remove();
    }

    // Under a reply that called tools: one labelled result box per call and a button that sends them all.
    function offerResults(message) {
      const cards = [...message.querySelectorAll(".tool-call")];
      if (!cards.length || message.querySelector(".tool-results")) return;
      dropResultForms();
      const form = document.createElement("form");
      form.className = "tool-results";
      form.setAttribute("aria-label", "Tool results");
      const boxes = cards.map((card, index) => {
        const field = document.createElement("div");
        field.className = "tool-result";
        const label = document.createElement("label");
        const area = document.createElement("textarea");
        area.id = "tool-result-" + message.dataset.messageId + "-" + index;
        area.rows = 2;
        area.placeholder = '{"temperature": 18, "unit": "celsius"}';
        area.dataset.toolCallId = card.dataset.toolCallId;
        area.dataset.toolName = card.dataset.toolName;
        label.htmlFor = area.id;
        label.textContent = "Result of " + card.dataset.toolName;
        field.append(label, area);
        form.appendChild(field);
        return area;
      });
      const buttons = document.createElement("div");
      buttons.className = "chat-buttons";
      const send = document.createElement("button");
      send.type = "submit";
      send.className = "primary";
      send.textContent = cards.length > 1 ? "Send results" : "Send result";
      buttons.appendChild(send);
      form.appendChild(buttons);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        sendResults(form, boxes);
      });
      message.appendChild(form);
    }

    function sendResults(form, boxes) {
      if (busy) return;
      const empty = boxes.find((area) => !area.value.trim());
      if (empty) {
        setStatus("Type the result of " + empty.dataset.toolName + " first.", true);
        empty.focus();
        return;
      }
      const fields = turnFields();
      if (!fields) return;
      delete fields.system; // results answer the conversation as it is
      const results = boxes.map((area) => ({ tool_call_id: area.dataset.toolCallId, content: area.value }));
      if (!socket.send({ type: "tool_result", conversation: conversation, results: results, ...fields })) {
        notConnected();
        return;
      }
      form.classList.add("hidden");
      const messages = boxes.map((area) =>
        makeMessage("tool", area.value, { id: area.dataset.toolCallId, name: area.dataset.toolName })
      );
      // Refused before they were saved: the result boxes come back as they were typed.
      beginTurn({ added: messages, giveBack: () => form.classList.remove("hidden"), onSaved: () => form.remove() });
      startReply();
    }

    // Re-render the streaming reply at most once per frame.
    function scheduleRender() {
      if (renderQueued) return;
      renderQueued = true;
      window.requestAnimationFrame(() => {
        renderQueued = false;
        if (current) {
          renderBody(current);
          scrollToEnd();
        }
      });
    }

    function onFrame(frame) {
      switch (frame.type) {
        case "conversation":
          confirmTurn(frame.saved || []);
          conversation = frame.id;
          app.dataset.conversation = String(frame.id);
          if (frame.title) title.textContent = frame.title;
          {
            const url = new URL(window.location.href);
            url.searchParams.set("conversation", String(frame.id));
            window.history.replaceState(null, "", url);
          }
          decorateAll();
          break;
        case "queued":
          setStatus("Waiting in line: position " + frame.position);
          break;
        case "started":
          setStatus("Generating…");
          break;
        case "token":
          if (!current) current = makeMessage("assistant", "");
          raw.set(current, (raw.get(current) || "") + frame.text);
          scheduleRender();
          break;
        case "tool_call":
          if (!current) current = makeMessage("assistant", "");
          addCall(current, frame);
          scrollToEnd();
          break;
        case "done": {
          const calls = frame.tool_calls || [];
          const saved = frame.message; // the reply as saved (a continued one: all of it)
          confirmTurn([]);
          if (current) {
            if (saved) {
              raw.set(current, saved.content);
              setSaved(current, saved);
            }
            renderBody(current);
            for (const call of calls) addCall(current, call);
            current.querySelector(".msg-meta").textContent = metaText(saved || frame);
            current.classList.remove("streaming");
            if (calls.length && frame.message_id) offerResults(current);
          }
          current = null;
          if (calls.length && frame.finish_reason !== "cancelled") {
            setStatus("The model called " + calls.map((c) => c.name).join(", ") + ": type the result and send it.");
          } else if (frame.finish_reason === "length") {
            setStatus("The reply reached max tokens: Continue asks for more.");
          } else {
            setStatus(frame.finish_reason === "cancelled" ? "Stopped." : "");
          }
          setBusy(false);
          decorateAll();
          scrollToEnd();
          scheduleCount(0);
          break;
        }
        case "path":
          if (frame.conversation !== conversation || busy) break;
          renderPath(frame.messages || []);
          setStatus("");
          scheduleCount(0);
          break;
        case "count":
          if (frame.seq === countSeq) showReading(frame);
          break;
        case "error":
          if (toolsPanel) toolsPanel.serverProblem(frame);
          if (current && (!pending || current !== pending.continued) && !raw.get(current)) current.remove();
          if (current) current.classList.remove("streaming");
          current = null;
          // Refused before it was saved (a parameter out of range, a message too long for the context): the page
          // as it was, and the text given back to edit.
          undoTurn();
          refocus = null;
          setStatus(frame.message || "Something went wrong.", true);
          setBusy(false);
          decorateAll();
          scheduleCount(0);
          break;
        default:
          break;
      }
    }

    const socket = openSocket(onFrame, (open) => {
      connected = open;
      if (!open && busy) {
        if (current) current.classList.remove("streaming");
        current = null;
        pending = null;
        setStatus("Connection lost; reconnecting…", true);
        busy = false;
      } else if (open && status.textContent.startsWith("Connection lost")) {
        setStatus("");
      }
      setBusy(busy);
      if (open) scheduleCount(0);
    });

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = input.value;
      if (!content.trim() || busy) return;
      const fields = turnFields();
      if (!fields) return;
      if (!socket.send({ type: "generate", mode: "chat", conversation: conversation, content: content, ...fields })) {
        notConnected();
        return;
      }
      closeEditors();
      dropResultForms(); // a new message instead of results: the calls stay unanswered
      const message = makeMessage("user", content);
      const giveBack = () => {
        if (!input.value) input.value = content;
        input.focus();
      };
      beginTurn({ added: [message], giveBack: giveBack });
      input.value = "";
      startReply();
    });

    stopButton.addEventListener("click", () => socket.send({ type: "stop" }));

    regenButton.addEventListener("click", () => {
      const last = log.lastElementChild;
      regenerate(last && last.dataset.role === "assistant" ? last : null);
    });

    // Another model: the same conversation on that model's card.
    if (picker) {
      picker.addEventListener("change", () => {
        const target =
          conversation !== null
            ? app.dataset.openUrl.replace(/\/0\/$/, "/" + conversation + "/")
            : app.dataset.newUrl;
        window.location.href = target + "?model=" + encodeURIComponent(picker.value);
      });
    }

    log.addEventListener("click", (event) => {
      const copy = event.target.closest("[data-copy-message]");
      if (copy) {
        window.copyText(raw.get(copy.closest(".msg")) || "", copy);
        return;
      }
      const button = event.target.closest(".msg-action");
      if (!button || button.disabled || busy) return;
      const message = button.closest(".msg");
      const action = button.dataset.action;
      if (action === "version") selectVersion(button);
      else if (action === "edit") openEditor(message, raw.get(message) || "");
      else if (action === "regenerate") regenerate(message);
      else if (action === "continue") continueReply(message);
      else if (action === "delete") deleteMessage(message);
    });

    // What the meter reads changes: count again (debounced; only the latest reading is shown).
    for (const element of [input, system]) element.addEventListener("input", () => scheduleCount());
    for (const id of ["params", "tools-form"]) {
      const element = document.getElementById(id);
      if (element) {
        element.addEventListener("input", () => scheduleCount());
        element.addEventListener("change", () => scheduleCount());
      }
    }
    if (overflowPicker) {
      // The conversation's setting, saved at once (a new conversation gets it with its first message).
      overflowPicker.addEventListener("change", () => {
        if (conversation !== null) {
          socket.send({ type: "settings", conversation: conversation, overflow: overflowPicker.value });
        }
        scheduleCount(0);
      });
    }

    enterSends(input, form);

    // Messages rendered by the server hold their text (escaped by Django); render it as Markdown here.
    for (const message of log.querySelectorAll(".msg")) {
      raw.set(message, message.querySelector(".msg-body").textContent);
      renderBody(message);
    }
    // A conversation reopened while its last reply's calls wait for their results.
    const last = log.lastElementChild;
    if (last && last.dataset.role === "assistant") offerResults(last);
    decorateAll();
    scrollToEnd();
  }

  // --- Completion -------------------------------------------------------------------------

  function initCompletion(app) {
    const form = document.getElementById("completion-form");
    const input = document.getElementById("completion-prompt");
    const sendButton = document.getElementById("completion-send");
    const stopButton = document.getElementById("completion-stop");
    const status = document.getElementById("completion-status");
    const output = document.getElementById("completion-output");
    const promptSpan = output.querySelector(".completion-prompt");
    const textSpan = output.querySelector(".completion-text");
    const meta = output.querySelector(".msg-meta");
    let busy = false;
    let connected = false;

    function setStatus(text, isError) {
      showStatus(status, text, isError);
    }

    function setBusy(value) {
      busy = value;
      sendButton.disabled = value || !connected;
      stopButton.classList.toggle("hidden", !value);
    }

    const socket = openSocket(
      (frame) => {
        switch (frame.type) {
          case "queued":
            setStatus("Waiting in line: position " + frame.position);
            break;
          case "started":
            setStatus("Generating…");
            break;
          case "token":
            textSpan.textContent += frame.text;
            break;
          case "done":
            meta.textContent = metaText(frame);
            setStatus(frame.finish_reason === "cancelled" ? "Stopped." : "");
            setBusy(false);
            break;
          case "error":
            setStatus(frame.message || "Something went wrong.", true);
            setBusy(false);
            break;
          default:
            break;
        }
      },
      (open) => {
        connected = open;
        if (!open && busy) {
          setStatus("Connection lost; reconnecting…", true);
          busy = false;
        }
        setBusy(busy);
      }
    );

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const prompt = input.value;
      if (!prompt || busy) return;
      const sent = socket.send({
        type: "generate",
        mode: "completion",
        model: app.dataset.model,
        content: prompt,
        params: panelParams(),
      });
      if (!sent) {
        setStatus("Not connected yet; try again in a moment.", true);
        return;
      }
      promptSpan.textContent = prompt;
      textSpan.textContent = "";
      meta.textContent = "";
      output.classList.remove("hidden");
      setStatus("Sending…");
      setBusy(true);
    });
    stopButton.addEventListener("click", () => socket.send({ type: "stop" }));
    document.getElementById("completion-copy").addEventListener("click", (event) => {
      window.copyText(promptSpan.textContent + textSpan.textContent, event.currentTarget);
    });
    enterSends(input, form);
    setBusy(false);
  }

  function init() {
    const chat = document.getElementById("chat-app");
    if (chat) initChat(chat);
    const completion = document.getElementById("completion-app");
    if (completion) initCompletion(completion);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
