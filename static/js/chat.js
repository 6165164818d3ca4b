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

    function makeMessage(role, text) {
      const message = document.createElement("article");
      message.className = "msg msg-" + role;
      message.dataset.role = role;
      const head = document.createElement("div");
      head.className = "msg-head";
      const who = document.createElement("span");
      who.className = "msg-role";
      who.textContent = role === "assistant" ? "Assistant" : "You";
      if (role === "assistant") {
        const model = document.createElement("span");
        model.className = "muted";
        model.textContent = " · " + (picker ? picker.value : app.dataset.model);
        who.appendChild(model);
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
        case "done":
          if (current) {
            renderBody(current);
            current.querySelector(".msg-meta").textContent = metaText(frame);
            if (frame.message_id) current.dataset.messageId = String(frame.message_id);
            current.classList.remove("streaming");
          }
          current = null;
          setStatus(frame.finish_reason === "cancelled" ? "Stopped." : "");
          setBusy(false);
          scrollToEnd();
          break;
        case "error":
          if (pendingUser) {
            // Refused before it was saved (e.g. a parameter out of range): give the text back to edit.
            if (!input.value) input.value = raw.get(pendingUser) || "";
            pendingUser.remove();
            pendingUser = null;
          }
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
      const sent = socket.send({
        type: "generate",
        mode: "chat",
        model: picker ? picker.value : app.dataset.model,
        conversation: conversation,
        system: system.value,
        content: content,
        params: panelParams(),
      });
      if (!sent) {
        setStatus("Not connected yet; try again in a moment.", true);
        return;
      }
      pendingUser = makeMessage("user", content);
      input.value = "";
      startReply();
    });

    stopButton.addEventListener("click", () => socket.send({ type: "stop" }));

    regenButton.addEventListener("click", () => {
      if (busy || conversation === null) return;
      const sent = socket.send({
        type: "regenerate",
        conversation: conversation,
        model: picker ? picker.value : app.dataset.model,
        system: system.value,
        params: panelParams(),
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
