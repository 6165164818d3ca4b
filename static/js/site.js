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

// Phones: the header's Menu button folds the site's links away (the CSS shows them while aria-expanded is
// "true"); Escape folds them again and gives the focus back to the button.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-menu-toggle]");
  if (!toggle) return;
  toggle.setAttribute("aria-expanded", toggle.getAttribute("aria-expanded") === "true" ? "false" : "true");
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const toggle = document.querySelector("[data-menu-toggle][aria-expanded=true]");
  if (!toggle) return;
  toggle.setAttribute("aria-expanded", "false");
  toggle.focus();
});

// Forms with data-confirm-dialog="question" ask before they submit, in a modal <dialog> built here (no inline
// script, so the CSP holds): Cancel has the focus, Escape cancels, and the confirm button says what happens
// (data-confirm-action, "Delete" by default). Without scripts the form submits at once.
function confirmDialog() {
  let dialog = document.getElementById("confirm-dialog");
  if (dialog) return dialog;
  dialog = document.createElement("dialog");
  dialog.id = "confirm-dialog";
  dialog.className = "confirm-dialog";
  dialog.setAttribute("role", "alertdialog");
  dialog.setAttribute("aria-labelledby", "confirm-dialog-title");
  dialog.setAttribute("aria-describedby", "confirm-dialog-text");
  const title = document.createElement("h2");
  title.id = "confirm-dialog-title";
  title.textContent = "Are you sure?";
  const text = document.createElement("p");
  text.id = "confirm-dialog-text";
  const form = document.createElement("form");
  form.method = "dialog";
  const cancel = document.createElement("button");
  cancel.value = "cancel";
  cancel.textContent = "Cancel";
  cancel.autofocus = true;
  const confirm = document.createElement("button");
  confirm.value = "confirm";
  confirm.className = "danger-fill";
  confirm.dataset.confirmButton = "";
  form.append(cancel, confirm);
  dialog.append(title, text, form);
  document.body.appendChild(dialog);
  return dialog;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm-dialog")) return;
  if (form.dataset.confirmed === "yes") { delete form.dataset.confirmed; return; }
  event.preventDefault();
  const submitter = event.submitter;
  const dialog = confirmDialog();
  dialog.querySelector("#confirm-dialog-text").textContent = form.dataset.confirmDialog;
  dialog.querySelector("[data-confirm-button]").textContent = form.dataset.confirmAction || "Delete";
  dialog.returnValue = "";
  dialog.addEventListener("close", () => {
    if (dialog.returnValue !== "confirm") { (submitter || form).focus?.(); return; }
    form.dataset.confirmed = "yes";
    form.requestSubmit(submitter && submitter.form === form ? submitter : undefined);
  }, { once: true });
  dialog.showModal();
});

// The header's project switcher: choosing a project switches at once (the Switch button stays for no scripts).
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.hasAttribute("data-autosubmit")) select.form?.requestSubmit();
});
document.querySelectorAll("[data-autosubmit-button]").forEach((button) => { button.hidden = true; });
