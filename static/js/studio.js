// Studio Playgrounds: "Get Code" carries the parameter form's current values to the Get Code tab.
"use strict";

(() => {
  if (window.studioGetCodeReady) return; // the script may be included more than once on a page
  window.studioGetCodeReady = true;

  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-studio] [data-get-code]");
    if (!link) return;
    const form = link.closest("[data-studio]").querySelector("form#params");
    if (!form) return;
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) {
      if (name === "csrfmiddlewaretoken" || typeof value !== "string") continue; // skip tokens and files
      params.append(name, value);
    }
    const url = new URL(link.href, window.location.href);
    window.location.href = url.pathname + "?tab=code&" + params.toString();
  });
})();
