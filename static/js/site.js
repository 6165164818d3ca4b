// Small site-wide behaviours: theme toggle, copy buttons, slider <-> number box pairs.
"use strict";

function currentTheme() {
  const set = document.documentElement.dataset.theme;
  if (set === "light" || set === "dark") return set;
  return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-theme-toggle]");
  if (toggle) {
    const next = currentTheme() === "dark" ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem("theme", next);
    return;
  }
  const copy = event.target.closest("[data-copy-target]");
  if (copy) {
    const source = document.querySelector(copy.dataset.copyTarget);
    if (!source) return;
    copyText(source.textContent, copy);
  }
});

function copyText(text, button) {
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    button.classList.add("copied");
    setTimeout(() => { button.textContent = label; button.classList.remove("copied"); }, 1200);
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  } else {
    fallbackCopy(text, done);
  }
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.opacity = "0";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  done();
}
window.copyText = copyText;

// A slider and its number box move together; the number box is what the form submits.
document.addEventListener("input", (event) => {
  const el = event.target;
  if (el.matches("input[type=range][data-pair]")) {
    const box = document.getElementById(el.dataset.pair);
    if (box) { box.value = el.value; box.dispatchEvent(new Event("change", { bubbles: true })); }
  } else if (el.matches("input[type=number][data-pair]")) {
    const slider = document.getElementById(el.dataset.pair);
    if (slider && el.value !== "") slider.value = el.value;
  }
});
