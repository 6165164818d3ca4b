// Safe Markdown for model output: builds DOM nodes and sets only textContent, never innerHTML,
// so whatever the model writes stays text. Supports fenced code blocks, inline code, bold,
// italic, headings, bullet and numbered lists, block quotes and paragraphs. An unclosed fence
// (a reply still streaming) renders as a code block up to the end. A fence that names its language
// is syntax-highlighted by the vendored highlight.js (see highlightInto: the one exception to
// "textContent only", and why it is safe).
"use strict";

(function () {
  // highlight.js, vendored from npm (static/vendor/, BSD-3-Clause): loaded beside this file, so that the pages
  // that use Markdown need no other tag; until it has loaded, code blocks show as plain text.
  const HIGHLIGHT_JS = "../vendor/highlight.js-11.12.0/highlight.min.js";
  const HIGHLIGHT_MAX_CHARS = 100000; // longer code stays plain: highlighting runs again on every streamed token
  const ownScript = document.currentScript;

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+.#-]*)\s*$/;
  const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
  const NUMBERED = /^\s{0,3}(\d{1,9})[.)]\s+(.*)$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const QUOTE = /^\s{0,3}>\s?(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;

  function el(tag, className) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    return node;
  }

  function isWordChar(ch) {
    return ch !== undefined && /[\p{L}\p{N}]/u.test(ch);
  }

  // Inline spans: `code`, **bold** / __bold__, *italic* / _italic_. Anything else is text.
  function renderInline(text, parent) {
    let buffer = "";
    const flush = () => {
      if (buffer) parent.appendChild(document.createTextNode(buffer));
      buffer = "";
    };
    let i = 0;
    while (i < text.length) {
      const ch = text[i];
      if (ch === "\\" && i + 1 < text.length && /[\\`*_#>\-+.!\[\]()]/.test(text[i + 1])) {
        buffer += text[i + 1];
        i += 2;
        continue;
      }
      if (ch === "`") {
        let ticks = 1;
        while (text[i + ticks] === "`") ticks += 1;
        const marker = "`".repeat(ticks);
        const end = text.indexOf(marker, i + ticks);
        if (end !== -1) {
          flush();
          const code = el("code");
          code.textContent = text.slice(i + ticks, end).replace(/^ (.+) $/, "$1");
          parent.appendChild(code);
          i = end + ticks;
          continue;
        }
        buffer += marker;
        i += ticks;
        continue;
      }
      if ((ch === "*" || ch === "_") && text[i + 1] === ch) {
        const marker = ch + ch;
        const end = text.indexOf(marker, i + 2);
        const opensWord = ch === "*" || !isWordChar(text[i - 1]);
        if (end > i + 2 && opensWord && text[i + 2] !== " " && text[end - 1] !== " ") {
          flush();
          const strong = el("strong");
          renderInline(text.slice(i + 2, end), strong);
          parent.appendChild(strong);
          i = end + 2;
          continue;
        }
      } else if (ch === "*" || ch === "_") {
        const opensWord = ch === "*" || !isWordChar(text[i - 1]);
        let end = -1;
        if (opensWord && text[i + 1] !== undefined && text[i + 1] !== " ") {
          for (let j = i + 1; j < text.length; j += 1) {
            if (text[j] === ch && text[j + 1] !== ch && text[j - 1] !== " " && text[j - 1] !== ch) {
              if (ch === "_" && isWordChar(text[j + 1])) continue; // snake_case is not emphasis
              end = j;
              break;
            }
          }
        }
        if (end > i + 1) {
          flush();
          const em = el("em");
          renderInline(text.slice(i + 1, end), em);
          parent.appendChild(em);
          i = end + 1;
          continue;
        }
      }
      buffer += ch;
      i += 1;
    }
    flush();
  }

  // Lines joined inside a paragraph keep their breaks (models write poems and addresses too).
  function renderLines(lines, parent) {
    lines.forEach((line, index) => {
      if (index > 0) parent.appendChild(el("br"));
      renderInline(line.trim(), parent);
    });
  }

  function renderBlocks(lines, root) {
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (!line.trim()) {
        i += 1;
        continue;
      }
      const fence = line.match(FENCE);
      if (fence) {
        const body = [];
        let j = i + 1;
        const closer = new RegExp("^\\s{0,3}" + fence[1][0] + "{" + fence[1].length + ",}\\s*$");
        while (j < lines.length && !closer.test(lines[j])) {
          body.push(lines[j]);
          j += 1;
        }
        const wrap = el("div", "md-code");
        const pre = el("pre");
        const code = el("code");
        if (fence[2]) {
          code.dataset.lang = fence[2];
          const label = el("span", "md-code-lang");
          label.textContent = fence[2];
          wrap.appendChild(label);
        }
        code.textContent = body.join("\n");
        if (fence[2]) highlightInto(code, fence[2].toLowerCase());
        pre.appendChild(code);
        wrap.appendChild(pre);
        const copy = el("button", "md-code-copy");
        copy.type = "button";
        copy.textContent = "Copy code";
        copy.addEventListener("click", () => window.copyText && window.copyText(code.textContent, copy));
        wrap.appendChild(copy);
        root.appendChild(wrap);
        i = j + 1;
        continue;
      }
      const heading = line.match(HEADING);
      if (heading) {
        const level = Math.min(6, heading[1].length + 2); // h3..h6: the page owns h1 and h2
        const h = el("h" + level, "md-heading");
        renderInline(heading[2], h);
        root.appendChild(h);
        i += 1;
        continue;
      }
      if (RULE.test(line)) {
        root.appendChild(el("hr"));
        i += 1;
        continue;
      }
      if (QUOTE.test(line)) {
        const quoted = [];
        while (i < lines.length && QUOTE.test(lines[i])) {
          quoted.push(lines[i].match(QUOTE)[1]);
          i += 1;
        }
        const quote = el("blockquote");
        renderBlocks(quoted, quote);
        root.appendChild(quote);
        continue;
      }
      if (BULLET.test(line) || NUMBERED.test(line)) {
        const numbered = !BULLET.test(line);
        const pattern = numbered ? NUMBERED : BULLET;
        const list = el(numbered ? "ol" : "ul");
        if (numbered) {
          const start = parseInt(line.match(NUMBERED)[1], 10);
          if (start !== 1) list.start = start;
        }
        let item = null;
        let itemLines = [];
        const closeItem = () => {
          if (item) {
            renderLines(itemLines, item);
            list.appendChild(item);
          }
        };
        while (i < lines.length) {
          const current = lines[i];
          const match = current.match(pattern);
          if (match) {
            closeItem();
            item = el("li");
            itemLines = [numbered ? match[2] : match[1]];
          } else if (current.trim() && /^\s+/.test(current) && !FENCE.test(current)) {
            itemLines.push(current); // an indented continuation (or nested item, shown flat)
          } else if (!current.trim() && i + 1 < lines.length && pattern.test(lines[i + 1])) {
            // a blank line between items keeps the list going
          } else {
            break;
          }
          i += 1;
        }
        closeItem();
        root.appendChild(list);
        continue;
      }
      const para = [];
      while (
        i < lines.length &&
        lines[i].trim() &&
        !FENCE.test(lines[i]) &&
        !HEADING.test(lines[i]) &&
        !BULLET.test(lines[i]) &&
        !NUMBERED.test(lines[i]) &&
        !QUOTE.test(lines[i]) &&
        !RULE.test(lines[i])
      ) {
        para.push(lines[i]);
        i += 1;
      }
      const p = el("p");
      renderLines(para, p);
      root.appendChild(p);
    }
  }

  // Only what highlight.js produces: <span class="..."> elements and text, nothing else.
  function onlyClassedSpans(root) {
    for (const node of root.querySelectorAll("*")) {
      if (node.tagName !== "SPAN") return false;
      for (const attribute of node.attributes) if (attribute.name !== "class") return false;
    }
    return true;
  }

  // Colour a code block's text (already set with textContent) when highlight.js knows its language.
  // hljs.highlight() escapes the code it is given (& < > " ' become entities) and wraps tokens in
  // <span class="hljs-...">, so its HTML holds the model's text only as text. It is still parsed into an
  // inert <template> (nothing there runs or loads) and used only if it is exactly that: class-only spans whose
  // text is the code, character for character; anything else leaves the plain text in place.
  function highlightInto(code, language) {
    const hljs = window.hljs;
    const text = code.textContent;
    if (!hljs || !language || text.length > HIGHLIGHT_MAX_CHARS || !hljs.getLanguage(language)) return;
    let html;
    try {
      html = hljs.highlight(text, { language, ignoreIllegals: true }).value;
    } catch (_) {
      return;
    }
    const template = document.createElement("template");
    template.innerHTML = html; // escaped by highlight.js; checked below before it reaches the page
    if (!onlyClassedSpans(template.content) || template.content.textContent !== text) return;
    code.replaceChildren(template.content);
    code.classList.add("hljs");
  }

  // Load highlight.js once, then colour the code blocks already on the page (earlier replies).
  function loadHighlighter() {
    if (window.hljs || !ownScript || !ownScript.src) return;
    const script = document.createElement("script");
    script.src = new URL(HIGHLIGHT_JS, ownScript.src).href;
    script.async = true;
    script.addEventListener("load", () => {
      document.querySelectorAll(".md-code code[data-lang]:not(.hljs)").forEach((code) => {
        highlightInto(code, code.dataset.lang.toLowerCase());
      });
    });
    document.head.appendChild(script);
  }
  loadHighlighter();

  // Markdown text -> DocumentFragment of elements whose text was set with textContent only.
  function renderMarkdown(text) {
    const fragment = document.createDocumentFragment();
    renderBlocks(String(text || "").replace(/\r\n?/g, "\n").split("\n"), fragment);
    return fragment;
  }

  // Replace an element's children with the rendered Markdown of `text`.
  function renderMarkdownInto(target, text) {
    target.replaceChildren(renderMarkdown(text));
    target.classList.add("md");
  }

  window.renderMarkdown = renderMarkdown;
  window.renderMarkdownInto = renderMarkdownInto;
})();
