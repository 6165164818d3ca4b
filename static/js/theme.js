// Applied before first paint so a dark-theme user never sees a white flash.
(function () {
  var saved = localStorage.getItem("theme");
  if (saved === "light" || saved === "dark") document.documentElement.dataset.theme = saved;
})();
