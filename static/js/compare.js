// Compare: one prompt sent to 2 to 4 panes over the ws/compare/ socket (protocol in
// playground/compare/consumers.py), their replies streamed side by side. Model text only ever reaches the page
// through textContent, by markdown.js's renderMarkdownInto (which builds DOM nodes the same way).
"use strict";

(function () {
  const root = document.getElementById("compare");
  if (!root) return;
  const form = document.getElementById("compare-form");
  const system = document.getElementById("compare-system");
  const input = document.getElementById("compare-input");
  const send = document.getElementById("compare-send");
  const stop = document.getElementById("compare-stop");
  const add = document.getElementById("compare-add");
  const status = document.getElementById("compare-status");
  const panes = Array.from(root.querySelectorAll("[data-pane]"));
  const minPanes = Number(root.dataset.minPanes) || 2;
  const maxPanes = Number(root.dataset.maxPanes) || 4;

  // The latest compare: the pane elements in the order they were sent (a frame's `pane` indexes this list),
  // and how many have not ended yet.
  let sent = [];
  let pending = 0;
  let connected = false;

  function showStatus(element, text, isError) {
    element.textContent = text || "";
    element.classList.toggle("error", Boolean(isError));
    element.setAttribute("role", isError ? "alert" : "status");
  }

  function part(pane, name) {
    return pane.querySelector("[data-" + name + "]");
  }

  // --- Panes: add, remove, number them, follow the model's defaults ------------------------------------------

  function visible() {
    return panes.filter((pane) => !pane.hidden);
  }

  function layout() {
    const shown = visible();
    shown.forEach((pane, n) => {
      part(pane, "pane-title").textContent = "Pane " + (n + 1);
      part(pane, "remove").setAttribute("aria-label", "Remove pane " + (n + 1));
      part(pane, "remove").hidden = shown.length <= minPanes;
      part(pane, "remove").disabled = pending > 0;
    });
    add.disabled = shown.length >= maxPanes || pending > 0;
  }

  function modelDefaults(pane) {
    const option = part(pane, "model").selectedOptions[0];
    let defaults = {};
    try {
      defaults = JSON.parse(option.dataset.defaults || "{}");
    } catch (err) {
      defaults = {};
    }
    return { defaults: defaults, nCtx: option.dataset.nCtx };
  }

  // Blank fields take the selected model's defaults: show them as placeholders, and the model's context as the
  // highest max tokens.
  function followModel(pane) {
    const model = modelDefaults(pane);
    for (const field of pane.querySelectorAll("input[data-param]")) {
      const name = field.dataset.param;
      if (name === "seed") continue;
      const value = model.defaults[name];
      field.placeholder = value === undefined || value === null ? "" : String(value);
      if (name === "max_tokens" && model.nCtx) field.max = model.nCtx;
    }
    summarize(pane);
  }

  // The summary line of a pane's parameters: the values set, or "model defaults".
  function summarize(pane) {
    const parts = [];
    for (const field of pane.querySelectorAll("[data-param]")) {
      if (field.value.trim() === "") continue;
      const label = pane.querySelector('label[for="' + field.id + '"]');
      const name = label ? label.textContent.toLowerCase() : field.dataset.param;
      parts.push(field.dataset.param === "stop" ? "stop sequences" : name + " " + field.value);
    }
    part(pane, "params-summary").textContent = parts.length ? parts.join(" · ") : "model defaults";
  }

  for (const pane of panes) {
    part(pane, "model").addEventListener("change", () => followModel(pane));
    const paneForm = part(pane, "pane-form");
    paneForm.addEventListener("input", () => summarize(pane));
    paneForm.addEventListener("reset", () => setTimeout(() => followModel(pane), 0));
    paneForm.addEventListener("submit", (event) => event.preventDefault());
    part(pane, "remove").addEventListener("click", () => {
      if (pending > 0 || visible().length <= minPanes) return;
      pane.hidden = true;
      layout();
      add.focus();
    });
    part(pane, "use").addEventListener("click", () => use(pane));
    followModel(pane);
  }

  add.addEventListener("click", () => {
    const next = panes.find((pane) => pane.hidden);
    if (!next || pending > 0) return;
    clearPane(next);
    next.hidden = false;
    layout();
    part(next, "model").focus();
  });

  // --- Sending ---------------------------------------------------------------------------------------------

  function paneFrame(pane) {
    const values = new FormData(part(pane, "pane-form"));
    const params = {};
    for (const [name, value] of values) {
      if (name !== "model") params[name] = value;
    }
    return { model: values.get("model"), params: params };
  }

  function clearPane(pane) {
    pane.replyText = "";
    const body = part(pane, "body");
    body.replaceChildren();
    body.classList.remove("md");
    part(pane, "meta").textContent = "";
    showStatus(part(pane, "status"), "", false);
    part(pane, "use").disabled = true;
    pane.querySelector(".compare-reply").classList.remove("streaming");
  }

  function setRunning(running) {
    send.disabled = running;
    stop.classList.toggle("hidden", !running);
    for (const pane of panes) {
      for (const control of part(pane, "pane-form").elements) control.disabled = running;
    }
    layout();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (pending > 0) return;
    if (!input.value.trim()) {
      showStatus(status, "Write a message to send to every pane.", true);
      input.focus();
      return;
    }
    const shown = visible();
    const frame = {
      type: "generate",
      system: system.value,
      content: input.value,
      panes: shown.map(paneFrame),
    };
    if (!socket.send(frame)) {
      showStatus(status, "Not connected; retrying…", true);
      return;
    }
    sent = shown;
    pending = shown.length;
    for (const pane of shown) {
      clearPane(pane);
      pane.querySelector(".compare-reply").classList.add("streaming");
      part(pane, "body").setAttribute("aria-busy", "true");
      showStatus(part(pane, "status"), "Sent…", false);
    }
    showStatus(status, "Generating in " + shown.length + " panes…", false);
    setRunning(true);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  stop.addEventListener("click", () => {
    socket.send({ type: "stop" });
    showStatus(status, "Stopping…", false);
  });

  function use(pane) {
    const index = sent.indexOf(pane);
    if (index < 0) return;
    part(pane, "use").disabled = true;
    showStatus(part(pane, "status"), "Saving as a conversation…", false);
    if (!socket.send({ type: "use", pane: index })) {
      showStatus(part(pane, "status"), "Not connected; try again.", true);
      part(pane, "use").disabled = false;
    }
  }

  // --- Frames ----------------------------------------------------------------------------------------------

  function money(cost) {
    const value = Number(cost);
    if (!Number.isFinite(value)) return "";
    return "$" + (value === 0 || value >= 0.000001 ? value.toFixed(6) : value.toPrecision(2));
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
    if (frame.cost !== undefined) parts.push("cost " + money(frame.cost));
    if (frame.finish_reason) parts.push("finish: " + frame.finish_reason);
    return parts.join(" · ");
  }

  // Re-render a pane's Markdown at most once a frame while tokens pour in.
  function render(pane) {
    if (pane.renderPending) return;
    pane.renderPending = true;
    window.requestAnimationFrame(() => {
      pane.renderPending = false;
      const body = part(pane, "body");
      if (window.renderMarkdownInto) window.renderMarkdownInto(body, pane.replyText || "");
      else body.textContent = pane.replyText || "";
    });
  }

  function paneEnded(pane) {
    pane.querySelector(".compare-reply").classList.remove("streaming");
    part(pane, "body").setAttribute("aria-busy", "false");
    pending = Math.max(0, pending - 1);
    if (pending === 0) {
      setRunning(false);
      showStatus(status, "All panes have answered.", false);
    }
  }

  function endAll(message) {
    for (const pane of sent) {
      if (pane.querySelector(".compare-reply").classList.contains("streaming")) {
        pane.querySelector(".compare-reply").classList.remove("streaming");
        part(pane, "body").setAttribute("aria-busy", "false");
      }
    }
    pending = 0;
    setRunning(false);
    showStatus(status, message, true);
  }

  function onFrame(frame) {
    const pane = typeof frame.pane === "number" ? sent[frame.pane] : undefined;
    if (frame.type === "error" && pane === undefined) {
      // A refusal of the whole frame: nothing started.
      if (pending > 0) endAll(frame.message);
      else showStatus(status, frame.message, true);
      return;
    }
    if (!pane) return;
    const paneStatus = part(pane, "status");
    if (frame.type === "queued") {
      showStatus(paneStatus, "Waiting for the model: number " + frame.position + " in line", false);
    } else if (frame.type === "started") {
      showStatus(paneStatus, "Generating…", false);
    } else if (frame.type === "token") {
      pane.replyText = (pane.replyText || "") + frame.text;
      render(pane);
    } else if (frame.type === "done") {
      render(pane);
      part(pane, "meta").textContent = metaText(frame);
      showStatus(paneStatus, frame.finish_reason === "cancelled" ? "Stopped." : "Done.", false);
      part(pane, "use").disabled = !(pane.replyText || "").trim();
      paneEnded(pane);
    } else if (frame.type === "conversation") {
      showStatus(paneStatus, "Saved; opening the conversation…", false);
      window.location.href = frame.url;
    } else if (frame.type === "error") {
      const name = frame.param ? " (" + frame.param + ")" : "";
      if (pane.querySelector(".compare-reply").classList.contains("streaming")) {
        showStatus(paneStatus, frame.message + name, true);
        paneEnded(pane);
      } else {
        // A refused "use": the reply stays, and so does the button.
        showStatus(paneStatus, frame.message + name, true);
        part(pane, "use").disabled = !(pane.replyText || "").trim();
      }
    }
  }

  // --- The socket: one per page, reopened with back-off ---------------------------------------------------

  function openSocket() {
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + "/ws/compare/";
    let current = null;
    let delay = 500;
    const connect = () => {
      current = new WebSocket(url);
      current.addEventListener("open", () => {
        delay = 500;
        connected = true;
        root.dataset.connected = "true";
        if (status.textContent.startsWith("Not connected")) showStatus(status, "", false);
      });
      current.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        onFrame(frame);
      });
      current.addEventListener("close", () => {
        const wasConnected = connected;
        connected = false;
        root.dataset.connected = "false";
        // The server cancels every pane when the socket closes, and forgets the replies.
        if (pending > 0) endAll("The connection was lost; the panes were stopped.");
        for (const pane of sent) part(pane, "use").disabled = true;
        sent = [];
        if (wasConnected && pending === 0 && !status.classList.contains("error")) {
          showStatus(status, "Not connected; retrying…", false);
        }
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      });
    };
    connect();
    return {
      send(frame) {
        if (!current || current.readyState !== WebSocket.OPEN) return false;
        current.send(JSON.stringify(frame));
        return true;
      },
    };
  }

  const socket = openSocket();
  layout();
})();
