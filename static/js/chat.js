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

  // Get Code: the lead's Code tab reads the panel's values from the query string.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-get-code]");
    if (!link) return;
    const form = document.getElementById("params");
    if (!form) return;
    event.preventDefault();
    const values = new URLSearchParams(new FormData(form));
    // The Code tab also fills in the text being written, if any.
    const text = document.getElementById("chat-input") || document.getElementById("completion-prompt");
    if (text && text.value.trim()) values.set("content", text.value);
    // ... and the Tools panel's values, as JSON (left out when unset).
    if (toolsPanel) {
      const checked = toolsPanel.check();
      if (checked.problem) {
        toolsPanel.reveal(checked);
        return;
      }
      for (const [name, value] of Object.entries(checked.fields)) {
        if (value !== null) values.set(name, JSON.stringify(value));
      }
    }
    const query = values.toString();
    window.location.href = "?tab=code" + (query ? "&" + query : "");
  });

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

    // The frame's tool fields ({fields}), or {problem, focus} for what the user must fix first.
    function check() {
      const tools = refreshTools();
      if (tools.problem) return { problem: tools.problem, focus: editor };
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
        const schema = refreshSchema();
        if (schema.problem) return { problem: schema.problem, focus: schemaEditor.value.trim() ? schemaEditor : schemaName };
        fields.response_format = { type: "json_schema", json_schema: { name: schemaName.value.trim(), schema: schema.schema } };
      }
      return { fields: fields };
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
    return { check: check, reveal: reveal, serverProblem: serverProblem };
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
    const raw = new WeakMap(); // message element -> its text as written (copy and re-render)
    let conversation = app.dataset.conversation ? parseInt(app.dataset.conversation, 10) : null;
    let current = null; // the assistant message being streamed
    let pendingUser = null; // the user's message until the server confirms it was saved
    let pendingResults = null; // {messages, form}: tool results sent, until the server confirms they were saved
    toolsPanel = initToolsPanel();
    let busy = false;
    let connected = false;
    let renderQueued = false;

    function setStatus(text, isError) {
      showStatus(status, text, isError);
    }

    function setBusy(value) {
      busy = value;
      sendButton.disabled = value || !connected;
      stopButton.classList.toggle("hidden", !value);
      regenButton.disabled = value || !connected || conversation === null || !log.querySelector(".msg-user");
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

    // `call`: for a tool result, the call it answers ({id, name}).
    function makeMessage(role, text, call) {
      const message = document.createElement("article");
      message.className = "msg msg-" + role;
      message.dataset.role = role;
      const head = document.createElement("div");
      head.className = "msg-head";
      const who = document.createElement("span");
      who.className = "msg-role";
      who.textContent = { assistant: "Assistant", tool: "Result of " }[role] || "You";
      if (role === "assistant") {
        const model = document.createElement("span");
        model.className = "muted";
        model.textContent = " · " + (picker ? picker.value : app.dataset.model);
        who.appendChild(model);
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
      const tools = toolsPanel ? toolsPanel.check() : { fields: {} };
      if (tools.problem) {
        setStatus(tools.problem, true);
        toolsPanel.reveal(tools);
        return;
      }
      const results = boxes.map((area) => ({ tool_call_id: area.dataset.toolCallId, content: area.value }));
      const sent = socket.send({
        type: "tool_result",
        conversation: conversation,
        results: results,
        model: picker ? picker.value : app.dataset.model,
        params: panelParams(),
        ...tools.fields,
      });
      if (!sent) {
        setStatus("Not connected yet; try again in a moment.", true);
        return;
      }
      form.classList.add("hidden");
      const messages = boxes.map((area) =>
        makeMessage("tool", area.value, { id: area.dataset.toolCallId, name: area.dataset.toolName })
      );
      pendingResults = { messages: messages, form: form };
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
          pendingUser = null;
          if (pendingResults) pendingResults.form.remove();
          pendingResults = null;
          conversation = frame.id;
          app.dataset.conversation = String(frame.id);
          if (frame.title) title.textContent = frame.title;
          {
            const url = new URL(window.location.href);
            url.searchParams.set("conversation", String(frame.id));
            window.history.replaceState(null, "", url);
          }
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
          if (current) {
            renderBody(current);
            for (const call of calls) addCall(current, call);
            current.querySelector(".msg-meta").textContent = metaText(frame);
            if (frame.message_id) current.dataset.messageId = String(frame.message_id);
            current.classList.remove("streaming");
            if (calls.length && frame.message_id) offerResults(current);
          }
          current = null;
          if (calls.length && frame.finish_reason !== "cancelled") {
            setStatus("The model called " + calls.map((c) => c.name).join(", ") + ": type the result and send it.");
          } else {
            setStatus(frame.finish_reason === "cancelled" ? "Stopped." : "");
          }
          setBusy(false);
          scrollToEnd();
          break;
        }
        case "error":
          if (pendingUser) {
            // Refused before it was saved (e.g. a parameter out of range): give the text back to edit.
            if (!input.value) input.value = raw.get(pendingUser) || "";
            pendingUser.remove();
            pendingUser = null;
          }
          if (pendingResults) {
            // Refused before they were saved: the result boxes come back as they were typed.
            for (const message of pendingResults.messages) message.remove();
            pendingResults.form.classList.remove("hidden");
            pendingResults = null;
          }
          if (toolsPanel) toolsPanel.serverProblem(frame);
          if (current && !raw.get(current)) current.remove();
          if (current) current.classList.remove("streaming");
          current = null;
          setStatus(frame.message || "Something went wrong.", true);
          setBusy(false);
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
        setStatus("Connection lost; reconnecting…", true);
        busy = false;
      } else if (open && status.textContent.startsWith("Connection lost")) {
        setStatus("");
      }
      setBusy(busy);
    });

    function startReply() {
      current = makeMessage("assistant", "");
      current.classList.add("streaming");
      setStatus("Sending…");
      setBusy(true);
      scrollToEnd();
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = input.value;
      if (!content.trim() || busy) return;
      const tools = toolsPanel ? toolsPanel.check() : { fields: {} };
      if (tools.problem) {
        setStatus(tools.problem, true);
        toolsPanel.reveal(tools);
        return;
      }
      const sent = socket.send({
        type: "generate",
        mode: "chat",
        model: picker ? picker.value : app.dataset.model,
        conversation: conversation,
        system: system.value,
        content: content,
        params: panelParams(),
        ...tools.fields,
      });
      if (!sent) {
        setStatus("Not connected yet; try again in a moment.", true);
        return;
      }
      dropResultForms(); // a new message instead of results: the calls stay unanswered
      pendingUser = makeMessage("user", content);
      input.value = "";
      startReply();
    });

    stopButton.addEventListener("click", () => socket.send({ type: "stop" }));

    regenButton.addEventListener("click", () => {
      if (busy || conversation === null) return;
      const tools = toolsPanel ? toolsPanel.check() : { fields: {} };
      if (tools.problem) {
        setStatus(tools.problem, true);
        toolsPanel.reveal(tools);
        return;
      }
      const sent = socket.send({
        type: "regenerate",
        conversation: conversation,
        model: picker ? picker.value : app.dataset.model,
        system: system.value,
        params: panelParams(),
        ...tools.fields,
      });
      if (!sent) return;
      const last = log.lastElementChild;
      if (last && last.dataset.role === "assistant") last.remove();
      startReply();
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
      const button = event.target.closest("[data-copy-message]");
      if (!button) return;
      const message = button.closest(".msg");
      window.copyText(raw.get(message) || "", button);
    });

    enterSends(input, form);

    // Messages rendered by the server hold their text (escaped by Django); render it as Markdown here.
    for (const message of log.querySelectorAll(".msg")) {
      raw.set(message, message.querySelector(".msg-body").textContent);
      renderBody(message);
    }
    // A conversation reopened while its last reply's calls wait for their results.
    const last = log.lastElementChild;
    if (last && last.dataset.role === "assistant") offerResults(last);
    setBusy(false);
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
