// Speech-to-text Playground: upload or record audio, stream segments over ws/speech/, download TXT/SRT/VTT.
// Model text is only ever written with textContent.
"use strict";

(() => {
  if (window.speechPlaygroundReady) return;
  window.speechPlaygroundReady = true;

  const CHUNK_BYTES = 256 * 1024;

  function pad(n, width) { return String(n).padStart(width, "0"); }

  // 61.5 -> "00:01:01,500" (SRT) or "00:01:01.500" (VTT)
  function timestamp(seconds, separator) {
    const ms = Math.max(0, Math.round(seconds * 1000));
    const h = Math.floor(ms / 3600000);
    const m = Math.floor((ms % 3600000) / 60000);
    const s = Math.floor((ms % 60000) / 1000);
    return `${pad(h, 2)}:${pad(m, 2)}:${pad(s, 2)}${separator}${pad(ms % 1000, 3)}`;
  }

  function shortTime(seconds) {
    const m = Math.floor(seconds / 60);
    return `${m}:${(seconds - m * 60).toFixed(2).padStart(5, "0")}`;
  }

  const builders = {
    txt: (segments) => segments.map((s) => s.text).join("\n") + "\n",
    srt: (segments) => segments.map((s, i) =>
      `${i + 1}\n${timestamp(s.start, ",")} --> ${timestamp(s.end, ",")}\n${s.text}\n`).join("\n"),
    vtt: (segments) => "WEBVTT\n\n" + segments.map((s) =>
      `${timestamp(s.start, ".")} --> ${timestamp(s.end, ".")}\n${s.text}\n`).join("\n"),
  };
  const mimeTypes = { txt: "text/plain", srt: "application/x-subrip", vtt: "text/vtt" };

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type + ";charset=utf-8" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function init(root) {
    if (root.dataset.sttReady) return;
    root.dataset.sttReady = "1";
    const q = (selector) => root.querySelector(selector);
    const form = q("form#params");
    form.addEventListener("submit", (event) => event.preventDefault()); // the socket sends it, not a page load
    const fileInput = q("[data-stt-file]");
    const recordButton = q("[data-stt-record]");
    const startButton = q("[data-stt-start]");
    const stopButton = q("[data-stt-stop]");
    const source = q("[data-stt-source]");
    const preview = q("[data-stt-preview]");
    const errorBox = q("[data-stt-error]");
    const status = q("[data-stt-status]");
    const table = q("[data-stt-table]");
    const body = q("[data-stt-segments]");
    const downloads = q("[data-stt-downloads]");
    const maxBytes = Number(root.dataset.maxBytes);

    let recorded = null; // Blob from the microphone
    let recorder = null;
    let socket = null;
    let segments = [];
    let previewUrl = null;

    function showError(message) {
      errorBox.textContent = message;
      errorBox.hidden = !message;
    }

    function setPreview(blob) {
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = blob ? URL.createObjectURL(blob) : null;
      preview.classList.toggle("hidden", !blob);
      if (blob) preview.src = previewUrl; else preview.removeAttribute("src");
    }

    function running(on) {
      startButton.disabled = on;
      stopButton.disabled = !on;
      recordButton.disabled = on;
    }

    function finish() {
      running(false);
      if (socket) { socket.onclose = null; socket.close(); socket = null; }
    }

    fileInput.addEventListener("change", () => {
      recorded = null;
      const file = fileInput.files[0];
      source.textContent = file ? `${file.name} · ${(file.size / 1048576).toFixed(1)} MB` : "";
      setPreview(file || null);
      showError(file && file.size > maxBytes ? `This file is over the ${maxBytes / 1048576} MB limit.` : "");
    });

    recordButton.addEventListener("click", async () => {
      if (recorder && recorder.state === "recording") { recorder.stop(); return; }
      if (!navigator.mediaDevices || !window.MediaRecorder) {
        showError("This browser cannot record audio here (it needs HTTPS or localhost and MediaRecorder).");
        return;
      }
      let stream;
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (err) {
        showError(`The microphone is not available: ${err.message}`);
        return;
      }
      const type = MediaRecorder.isTypeSupported("audio/webm;codecs=opus") ? "audio/webm;codecs=opus" : "";
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
      const chunks = [];
      const started = Date.now();
      const timer = setInterval(() => {
        source.textContent = `Recording… ${((Date.now() - started) / 1000).toFixed(0)} s`;
      }, 250);
      recorder.addEventListener("dataavailable", (e) => { if (e.data.size) chunks.push(e.data); });
      recorder.addEventListener("stop", () => {
        clearInterval(timer);
        stream.getTracks().forEach((t) => t.stop());
        recorded = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        fileInput.value = "";
        source.textContent = `Recording · ${((Date.now() - started) / 1000).toFixed(1)} s · ${(recorded.size / 1024).toFixed(0)} KB`;
        setPreview(recorded);
        recordButton.textContent = "● Record";
      });
      showError("");
      recorder.start();
      recordButton.textContent = "■ Stop recording";
    });

    startButton.addEventListener("click", () => {
      const audio = recorded || fileInput.files[0];
      showError("");
      if (!audio) { showError("Choose an audio file or record something first."); return; }
      if (audio.size > maxBytes) { showError(`The audio is over the ${maxBytes / 1048576} MB limit.`); return; }
      segments = [];
      body.replaceChildren();
      table.classList.add("hidden");
      downloads.classList.add("hidden");
      status.textContent = "Uploading…";
      running(true);

      const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
      socket = new WebSocket(`${scheme}//${window.location.host}${root.dataset.wsPath}`);
      const fields = new FormData(form);
      socket.onopen = () => {
        socket.send(JSON.stringify({
          type: "transcribe",
          model: root.dataset.model,
          task: fields.get("task") || "transcribe",
          language: fields.get("language") || "",
          size: audio.size,
        }));
        // The server refuses WebSocket messages over 1 MiB, so the file goes in chunks.
        for (let offset = 0; offset < audio.size; offset += CHUNK_BYTES) {
          socket.send(audio.slice(offset, offset + CHUNK_BYTES));
        }
        status.textContent = "Decoding…";
      };
      socket.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        if (msg.type === "info") {
          status.textContent = `Language: ${msg.language} · ${msg.duration.toFixed(1)} s of audio · transcribing…`;
        } else if (msg.type === "segment") {
          segments.push(msg);
          const row = document.createElement("tr");
          for (const value of [shortTime(msg.start), shortTime(msg.end), msg.text]) {
            const cell = document.createElement("td");
            cell.textContent = value;
            row.appendChild(cell);
          }
          body.appendChild(row);
          table.classList.remove("hidden");
          downloads.classList.remove("hidden");
        } else if (msg.type === "done") {
          const rtf = msg.real_time_factor == null ? "" : ` · real-time factor ${msg.real_time_factor.toFixed(3)}`;
          status.textContent = `Done · ${msg.usage.audio_seconds.toFixed(1)} s of audio · ${segments.length} segments${rtf}`;
          finish();
        } else if (msg.type === "stopped") {
          status.textContent = `Stopped after ${segments.length} segments.`;
          finish();
        } else if (msg.type === "error") {
          showError(msg.message);
          status.textContent = "";
          finish();
        }
      };
      socket.onclose = (event) => {
        if (socket) {
          showError(event.code === 4401 ? "Log in to use the Playground." : "The connection closed unexpectedly.");
          status.textContent = "";
          socket = null;
          running(false);
        }
      };
    });

    stopButton.addEventListener("click", () => {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "stop" }));
      else finish();
    });

    downloads.addEventListener("click", (event) => {
      const button = event.target.closest("button");
      if (!button || !segments.length) return;
      if (button.hasAttribute("data-stt-copy")) {
        window.copyText(builders.txt(segments).trim(), button);
        return;
      }
      const kind = button.dataset.sttDownload;
      download(`transcript.${kind}`, builders[kind](segments), mimeTypes[kind]);
    });
  }

  function initAll(scope) {
    (scope || document).querySelectorAll("[data-stt]").forEach(init);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => initAll());
  else initAll();
  document.addEventListener("htmx:load", (event) => initAll(event.target));
})();
