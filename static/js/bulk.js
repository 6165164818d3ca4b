// Bulk Prompts: the job form reloads with a model's defaults when the model changes; Async History
// polls the jobs' progress and updates each row in place (no page reload).
(() => {
  const form = document.querySelector("form[data-model-reload]");
  if (form) {
    const select = form.querySelector("select[name=model]");
    select?.addEventListener("change", () => {
      const url = new URL(window.location.href);
      url.searchParams.set("model", select.value);
      window.location.assign(url.toString());
    });
  }

  const table = document.getElementById("jobs");
  if (!table) return;
  const formatEta = (seconds) => {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 90) return `about ${seconds} s left`;
    if (seconds < 5400) return `about ${Math.round(seconds / 60)} min left`;
    return `about ${(seconds / 3600).toFixed(1)} h left`;
  };
  const update = (job) => {
    const row = table.querySelector(`tr[data-job="${job.id}"]`);
    if (!row) return;
    row.dataset.status = job.status;
    const status = row.querySelector("[data-field=status]");
    status.textContent = job.status_label;
    status.className = `status status-${job.status}`;
    row.querySelector("[data-field=error]").textContent = job.error;
    const bar = row.querySelector("[data-field=bar]");
    bar.max = job.total;
    bar.value = job.done + job.failed;
    row.querySelector("[data-field=counts]").textContent = `${job.done} done · ${job.failed} failed · ${job.total} total`;
    row.querySelector("[data-field=eta]").textContent = formatEta(job.eta_seconds);
    row.querySelectorAll("[data-action=download]").forEach((a) => {
      if (job.downloadable) { a.removeAttribute("aria-disabled"); a.removeAttribute("tabindex"); }
      else { a.setAttribute("aria-disabled", "true"); a.setAttribute("tabindex", "-1"); }
    });
    row.querySelector("[data-action=delete]").disabled = !job.downloadable;
    row.querySelector("[data-action=cancel]").hidden = !job.cancellable;
    const retry = row.querySelector("[data-action=retry]");
    retry.hidden = !job.retryable;
    retry.textContent = job.retry_label; // "Resume" for a cancelled job, "Retry failed" for one with failures
  };
  let timer = null;
  const poll = async () => {
    try {
      const response = await fetch(table.dataset.poll, { headers: { Accept: "application/json" } });
      if (response.ok) {
        const { jobs } = await response.json();
        jobs.forEach(update);
        const known = new Set(jobs.map((j) => String(j.id)));
        const shown = [...table.querySelectorAll("tr[data-job]")].map((r) => r.dataset.job);
        if (jobs.length && shown.some((id) => !known.has(id))) {
          // A job was removed elsewhere: show the table as it is now.
          window.location.reload();
          return;
        }
        if (jobs.every((j) => j.finished)) { timer = setTimeout(poll, 10000); return; }
      }
    } catch (_) { /* the next poll tries again */ }
    timer = setTimeout(poll, 1500);
  };
  timer = setTimeout(poll, 1000);
  window.addEventListener("pagehide", () => clearTimeout(timer));
})();
