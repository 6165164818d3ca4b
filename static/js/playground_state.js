// The Playground's state kept across tabs and reloads, Get Code made from that state, saved presets, and the open
// conversation's export links. chat.js runs the chat itself; this file only reads and fills the page's fields (ids
// from chat/_playground.html, _tools.html, _params.html and _completion.html).
//
// The state lives in sessionStorage (this browser tab only), one entry per model: the Advanced Parameters, the
// system prompt, the Tools panel, the message being written and the open conversation. It is saved as the fields
// change and when the page is left, and put back when the Playground opens again on the same conversation (or on
// a new chat again), so Playground -> Get Code -> Playground keeps everything. The Get Code tab posts the state to
// /models/<id>/code/ and shows the snippets for it. "New chat" forgets it.
"use strict";

(function () {
  if (window.playgroundStateReady) return; // included by the card and by the panel: once is enough
  window.playgroundStateReady = true;

  const PREFIX = "playground-state:";
  const OWNER = "playground-state-owner"; // the user whose states are kept: another one (after a log-out) starts clean
  const CHOICES = ["auto", "none", "required"];
  let leaving = false; // "New chat" was clicked: what is on the page now must not be kept

  const byId = (id) => document.getElementById(id);

  function load(model) {
    try {
      return JSON.parse(window.sessionStorage.getItem(PREFIX + model) || "null");
    } catch (err) {
      return null;
    }
  }

  function store(model, state) {
    try {
      window.sessionStorage.setItem(PREFIX + model, JSON.stringify(state));
    } catch (err) {
      // storage full or switched off: the state is simply not kept
    }
  }

  function forget(model) {
    try {
      window.sessionStorage.removeItem(PREFIX + model);
    } catch (err) {
      // as above
    }
  }

  // States belong to the user who made them: on a card page of another user (or of nobody), forget them all.
  function checkOwner() {
    const nav = document.querySelector("[data-card-user]");
    if (!nav) return;
    try {
      if (window.sessionStorage.getItem(OWNER) === nav.dataset.cardUser) return;
      for (const key of Object.keys(window.sessionStorage)) {
        if (key.startsWith(PREFIX)) window.sessionStorage.removeItem(key);
      }
      window.sessionStorage.setItem(OWNER, nav.dataset.cardUser);
    } catch (err) {
      // storage off: nothing is kept anyway
    }
  }

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function playgroundApp() {
    return byId("chat-app") || byId("completion-app");
  }

  function cardModel() {
    const app = playgroundApp();
    if (app) return app.dataset.model;
    const nav = document.querySelector("[data-card-model]");
    return nav ? nav.dataset.cardModel : null;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // --- Reading and filling the Playground ---------------------------------------------------

  function readState(app) {
    const state = { mode: app.dataset.mode, conversation: app.dataset.conversation || "", params: {}, draft: "" };
    const form = byId("params");
    if (form) {
      for (const [name, value] of new FormData(form)) state.params[name] = String(value);
    }
    if (state.mode === "chat") {
      state.system = byId("chat-system") ? byId("chat-system").value : "";
      state.draft = byId("chat-input") ? byId("chat-input").value : "";
      const panel = byId("tools-panel");
      if (panel) {
        state.tools = {
          open: panel.open,
          functions: byId("tools-json").value,
          choice: byId("tool-choice").value,
          parallel: byId("parallel-tool-calls").checked,
          format: byId("response-format").value,
          schemaName: byId("schema-name").value,
          schema: byId("schema-json").value,
        };
      }
    } else if (byId("completion-prompt")) {
      state.draft = byId("completion-prompt").value;
    }
    return state;
  }

  function fire(element, type) {
    element.dispatchEvent(new Event(type, { bubbles: true }));
  }

  // The panel's fields from saved values (a state, a preset, the model's defaults). A number past its box's range
  // (a preset saved for a model with a longer context) is brought inside it.
  function setParams(params) {
    const form = byId("params");
    if (!form || !params) return;
    for (const [name, value] of Object.entries(params)) {
      const field = form.elements.namedItem(name);
      if (!field || !("value" in field) || field instanceof RadioNodeList) continue;
      let text = Array.isArray(value) ? value.join("\n") : value === null || value === undefined ? "" : String(value);
      if (field.type === "number" && text !== "" && Number.isFinite(Number(text))) {
        if (field.max !== "" && Number(text) > Number(field.max)) text = field.max;
        if (field.min !== "" && Number(text) < Number(field.min)) text = field.min;
      }
      field.value = text;
      fire(field, "input"); // site.js moves the slider paired with a number box
    }
  }

  // The Tools panel in the order chat.js builds it: the list (which fills the tool-choice picker), the choice,
  // the schema, then the reply format.
  function setTools(tools) {
    const panel = byId("tools-panel");
    if (!panel || !tools) return;
    const editor = byId("tools-json");
    // The same list as the server put there (the conversation's, as saved): its text stays as the server wrote it.
    if (toolsKey(editor.value) !== toolsKey(tools.functions || "")) {
      editor.value = tools.functions || "";
      fire(editor, "input");
    }
    const choice = byId("tool-choice");
    if ([...choice.options].some((option) => option.value === tools.choice)) {
      choice.value = tools.choice;
      fire(choice, "change");
    }
    byId("parallel-tool-calls").checked = tools.parallel !== false;
    byId("schema-name").value = tools.schemaName || "reply";
    byId("schema-json").value = tools.schema || "";
    const format = byId("response-format");
    format.value = tools.format || "text";
    if (format.selectedIndex < 0) format.value = "text";
    fire(format, "change");
    if (tools.open) panel.open = true;
  }

  // A function list in OpenAI's shape (bare {name, ...} objects wrapped), as comparable text; the text itself
  // when it is not JSON.
  function wrapTools(list) {
    if (isObject(list)) list = [list];
    if (!Array.isArray(list)) return list;
    return list.map((item) =>
      isObject(item) && !("type" in item) && !("function" in item) ? { type: "function", function: item } : item
    );
  }

  function toolsKey(text) {
    if (!text.trim()) return "";
    try {
      return JSON.stringify(wrapTools(JSON.parse(text)));
    } catch (err) {
      return text;
    }
  }

  function restore(state) {
    setParams(state.params);
    if (state.mode === "chat") {
      if (byId("chat-system")) byId("chat-system").value = state.system || "";
      setTools(state.tools);
      if (byId("chat-input")) byId("chat-input").value = state.draft || "";
    } else if (byId("completion-prompt")) {
      byId("completion-prompt").value = state.draft || "";
    }
  }

  // --- Get Code -----------------------------------------------------------------------------

  // The Tools panel's fields as a chat frame sends them (OpenAI's shapes), each as JSON text. A list that is not
  // JSON goes as it is, so the Get Code tab says what is wrong with it.
  function toolFields(tools) {
    const fields = {};
    if (!tools) return fields;
    if (tools.functions && tools.functions.trim()) {
      let list = null;
      try {
        list = JSON.parse(tools.functions);
      } catch (err) {
        fields.tools = tools.functions;
      }
      const wrapped = list === null ? null : wrapTools(list);
      if (wrapped !== null && !Array.isArray(wrapped)) fields.tools = tools.functions; // the tab says what is wrong
      if (Array.isArray(wrapped) && wrapped.length) {
        fields.tools = JSON.stringify(wrapped);
        const choice = CHOICES.includes(tools.choice) ? tools.choice : { type: "function", function: { name: tools.choice } };
        fields.tool_choice = JSON.stringify(choice);
        fields.parallel_tool_calls = JSON.stringify(tools.parallel !== false);
      }
    }
    if (tools.format === "json_object") {
      fields.response_format = JSON.stringify({ type: "json_object" });
    } else if (tools.format === "json_schema") {
      let schema = tools.schema;
      try {
        schema = JSON.parse(tools.schema);
      } catch (err) {
        // sent as text: the Get Code tab says the schema must be an object
      }
      fields.response_format = JSON.stringify({
        type: "json_schema",
        json_schema: { name: (tools.schemaName || "").trim(), schema: schema },
      });
    }
    return fields;
  }

  function codeFields(state) {
    const fields = new URLSearchParams();
    for (const [name, value] of Object.entries(state.params || {})) fields.set(name, value);
    fields.set("content", state.draft || "");
    if (state.mode === "chat") {
      fields.set("system", state.system || "");
      if (state.conversation) fields.set("conversation", state.conversation);
      for (const [name, value] of Object.entries(toolFields(state.tools))) fields.set(name, value);
    }
    return fields;
  }

  // The Get Code tab: the snippets for the Playground's state, if this tab has one for the model.
  function initCode(model) {
    const code = byId("code");
    if (!code || !code.dataset.codeUrl) return;
    const state = load(model);
    if (!state || !state.params || !Object.keys(state.params).length) return;
    code.setAttribute("aria-busy", "true");
    fetch(code.dataset.codeUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrfToken() },
      body: codeFields(state),
      credentials: "same-origin",
    })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(String(response.status)))))
      .then((html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("code");
        if (!fresh) throw new Error("no snippets in the answer");
        code.replaceWith(fresh);
        document.dispatchEvent(new CustomEvent("code:updated"));
      })
      .catch(() => {
        code.removeAttribute("aria-busy");
        const note = document.createElement("p");
        note.className = "error";
        note.setAttribute("role", "alert");
        note.textContent = "The Playground's current settings could not be read; these snippets use the ones described above.";
        code.insertBefore(note, code.children[1] || null);
      });
  }

  // --- Presets ------------------------------------------------------------------------------

  function initPresets(app, model) {
    const box = byId("presets");
    if (!box) return;
    const pick = byId("preset-pick");
    const remove = byId("preset-delete");
    const name = byId("preset-name");
    const save = byId("preset-save");
    const status = byId("preset-status");
    const saved = (option) => Boolean(option) && /^\d+$/.test(option.value);

    function say(text, isError) {
      status.textContent = text;
      status.classList.toggle("error", Boolean(isError));
      status.classList.toggle("ok", Boolean(text) && !isError);
      status.setAttribute("role", isError ? "alert" : "status");
    }

    function describe(option, data) {
      option.value = String(data.id);
      option.textContent = data.name;
      option.dataset.params = JSON.stringify(data.params);
      option.dataset.system = data.system_prompt;
    }

    pick.addEventListener("change", () => {
      const option = pick.selectedOptions[0];
      remove.disabled = !saved(option);
      if (!option || !option.value) return;
      if (option.value === "defaults") {
        setParams(JSON.parse(box.dataset.defaults || "{}"));
        say("The model's default parameters are set.");
      } else {
        setParams(JSON.parse(option.dataset.params || "{}"));
        const system = byId("chat-system");
        if (system && option.dataset.system) system.value = option.dataset.system;
        name.value = option.textContent;
        say("Preset “" + option.textContent + "” applied.");
      }
      store(model, readState(app));
    });

    save.addEventListener("click", async () => {
      const label = name.value.trim();
      if (!label) {
        say("Give the preset a name.", true);
        name.focus();
        return;
      }
      const form = byId("params");
      const body = new URLSearchParams(form ? new FormData(form) : undefined);
      body.set("name", label);
      body.set("model", model);
      body.set("system_prompt", byId("chat-system") ? byId("chat-system").value : "");
      let response;
      let data = {};
      try {
        response = await fetch(box.dataset.saveUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken() },
          body: body,
          credentials: "same-origin",
        });
        data = await response.json();
      } catch (err) {
        say("The preset could not be saved; try again.", true);
        return;
      }
      if (!response.ok) {
        say(data.error || "The preset could not be saved.", true);
        return;
      }
      let option = [...pick.options].find((o) => o.value === String(data.id));
      if (!option) {
        option = document.createElement("option");
        const after = [...pick.options].find((o) => saved(o) && o.textContent.localeCompare(data.name) > 0);
        pick.insertBefore(option, after || null);
      }
      describe(option, data);
      pick.value = option.value;
      remove.disabled = false;
      say("Saved preset “" + data.name + "”.");
    });

    name.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        save.click();
      }
    });

    remove.addEventListener("click", async () => {
      const option = pick.selectedOptions[0];
      if (!saved(option) || !window.confirm("Delete the preset “" + option.textContent + "”?")) return;
      const url = box.dataset.deleteUrl.replace(/\/0\/delete\/$/, "/" + option.value + "/delete/");
      let response;
      try {
        response = await fetch(url, { method: "POST", headers: { "X-CSRFToken": csrfToken() }, credentials: "same-origin" });
      } catch (err) {
        response = null;
      }
      if (!response || !response.ok) {
        say("The preset could not be deleted; try again.", true);
        return;
      }
      const label = option.textContent;
      option.remove();
      pick.value = "";
      remove.disabled = true;
      say("Deleted preset “" + label + "”.");
    });
  }

  // --- The Playground -----------------------------------------------------------------------

  function updateExport(app) {
    const box = byId("chat-export");
    if (!box) return;
    const id = app.dataset.conversation;
    box.hidden = !id;
    if (!id) return;
    byId("export-md").href = box.dataset.mdUrl.replace("/0/", "/" + id + "/");
    byId("export-json").href = box.dataset.jsonUrl.replace("/0/", "/" + id + "/");
  }

  function initPlayground(app, model) {
    const state = load(model);
    const same =
      state && state.mode === app.dataset.mode && (state.conversation || "") === (app.dataset.conversation || "");
    if (same) {
      restore(state);
    } else if (app.dataset.mode === "chat" && !app.dataset.conversation) {
      // A new chat starts from the system prompt of the user's latest reply from this model (the panel's
      // parameters come from the server already).
      const presets = byId("presets");
      const system = byId("chat-system");
      const remembered = presets ? presets.dataset.rememberedSystem : "";
      if (system && remembered && !system.value) system.value = remembered;
    }
    const keep = () => {
      if (!leaving) store(model, readState(app));
    };
    keep();
    app.addEventListener("input", keep);
    app.addEventListener("change", keep);
    const form = byId("params");
    if (form) form.addEventListener("reset", () => window.setTimeout(keep, 0)); // the values change after the event
    window.addEventListener("pagehide", keep);
    // chat.js sets data-conversation when the first message creates the conversation.
    new MutationObserver(() => {
      keep();
      updateExport(app);
    }).observe(app, { attributes: true, attributeFilter: ["data-conversation"] });
    const newChat = byId("chat-new");
    if (newChat) {
      newChat.addEventListener("click", () => {
        leaving = true;
        forget(model);
      });
    }
    updateExport(app);
  }

  // Leaving for another tab: keep the state as it is now; the Playground tab reopens the conversation.
  document.addEventListener(
    "click",
    (event) => {
      const link = event.target.closest('[data-tab="playground"], [data-tab="code"], #params [data-get-code]');
      if (!link) return;
      const model = cardModel();
      const app = playgroundApp();
      // A studio page's button: studio.js puts its values in the link. The text Playground's is a plain link to
      // the tab, which posts the state (initCode).
      if (link.matches("[data-get-code]") && !app) return;
      if (!model) return;
      if (app && !leaving) store(model, readState(app));
      if (link.dataset.tab === "playground") {
        const state = load(model);
        if (state && state.conversation) {
          link.href = "?tab=playground&conversation=" + encodeURIComponent(state.conversation);
        }
      }
    },
    true
  );

  function init() {
    checkOwner();
    const model = cardModel();
    if (!model) return;
    const app = playgroundApp();
    if (app) {
      initPlayground(app, model);
      initPresets(app, model);
    }
    initCode(model);
    document.documentElement.dataset.playgroundState = "ready";
  }

  // After chat.js has set the page up (its deferred script may come after this one).
  if (document.readyState === "complete") init();
  else document.addEventListener("DOMContentLoaded", () => window.setTimeout(init, 0));
})();
