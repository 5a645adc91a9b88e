// Live parts of the dashboard: server-sent events, polling where EventSource is missing or
// fails. Pages work without this script; it only keeps numbers and progress current.
"use strict";

function follow(url, pollUrl, onData, everyMs) {
  let polling = null;
  const poll = () => {
    if (polling) return;
    polling = setInterval(() => {
      fetch(pollUrl, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : null))
        .then((data) => { if (data && onData(data) === false) clearInterval(polling); })
        .catch(() => {});
    }, everyMs);
  };
  if (!window.EventSource) { poll(); return; }
  const source = new EventSource(url);
  source.onmessage = (event) => { if (onData(JSON.parse(event.data)) === false) source.close(); };
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) return; source.close(); poll(); };
}

function liveCounts(section) {
  follow(section.dataset.liveCounts, section.dataset.poll, (counts) => {
    for (const [name, value] of Object.entries(counts)) {
      const cell = section.querySelector(`[data-count="${name}"]`);
      if (cell) cell.textContent = value;
    }
  }, 2000);
}

function liveRun(section) {
  follow(section.dataset.liveRun, section.dataset.poll, (run) => {
    const status = section.querySelector('[data-field="status"] .status');
    if (status) { status.textContent = run.status; status.className = `status status-${run.status}`; }
    const attempt = section.querySelector('[data-field="attempt"]');
    if (attempt) attempt.textContent = run.attempt;
    const bar = section.querySelector('[data-field="progress"]');
    if (bar && run.done !== null) {
      const percent = run.percent === null ? 0 : run.percent;
      bar.setAttribute("aria-valuenow", percent);
      bar.querySelector(".bar").style.width = `${percent}%`;
      bar.querySelector(".progress-text").textContent =
        run.total ? `${run.done} of ${run.total}` : `${run.done}`;
    }
    return !run.finished;
  }, 1000);
}

function confirmForms() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live-counts]").forEach(liveCounts);
  document.querySelectorAll("[data-live-run]").forEach(liveRun);
  confirmForms();
});
