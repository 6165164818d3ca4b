// Get Code tab: show one language's snippet at a time and remember the choice.
// Without JavaScript every snippet stays visible.
"use strict";

(() => {
  if (window.codeSwitcherReady) return; // loaded again by an htmx swap: the listeners below are already there
  window.codeSwitcherReady = true;

  function choose(root, lang) {
    const buttons = root.querySelectorAll("[data-code-lang]");
    if (![...buttons].some((b) => b.dataset.codeLang === lang)) lang = buttons.length ? buttons[0].dataset.codeLang : "";
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.codeLang === lang)));
    root.querySelectorAll("[data-code-snippet]").forEach((s) => { s.hidden = s.dataset.codeSnippet !== lang; });
  }

  function init() {
    document.querySelectorAll("[data-code-switcher]").forEach((root) => choose(root, localStorage.getItem("code-lang")));
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-code-lang]");
    const root = button && button.closest("[data-code-switcher]");
    if (!root) return;
    localStorage.setItem("code-lang", button.dataset.codeLang);
    choose(root, button.dataset.codeLang);
  });
  document.addEventListener("htmx:afterSwap", init);
  document.addEventListener("code:updated", init); // playground_state.js put in the snippets for the Playground's state
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
