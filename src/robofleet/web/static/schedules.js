// Schedules pages: show only the fields of the chosen trigger kind and cron shape, the robot picker for robots.*
// actions, filter the schedules table ("/" focuses the box; the rows it hides stay hidden when they refresh), and
// refresh the table when the schedules' stream says a fire was written.
(function () {
  "use strict";
  function showKinds(form) {
    const kind = form.querySelector("[data-kind-select]");
    const mode = form.querySelector("[data-mode-select]");
    const action = form.querySelector("[data-action-input]");
    form.querySelectorAll("[data-kind]").forEach(function (box) {
      box.hidden = !!kind && box.dataset.kind !== kind.value;
    });
    form.querySelectorAll("[data-modes]").forEach(function (box) {
      box.hidden = !!mode && box.dataset.modes.split(" ").indexOf(mode.value) < 0;
    });
    form.querySelectorAll("[data-robot-picker]").forEach(function (box) {
      box.hidden = !!action && action.value.indexOf("robots.") !== 0;
    });
    // What is hidden is neither checked by the browser nor sent: the server reads the chosen kind's fields only.
    form.querySelectorAll("[data-kind] input, [data-kind] select, [data-robot-picker] select").forEach(function (control) {
      control.disabled = control.closest("[hidden]") !== null;
    });
  }
  function filterRows() {
    const box = document.getElementById("schedule-filter");
    if (!box) return;
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll("#schedules tr[data-search]").forEach(function (row) {
      const text = row.dataset.search.toLowerCase();
      row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
    });
  }
  function start() {
    document.querySelectorAll("form.schedule-form").forEach(function (form) {
      showKinds(form);
      form.addEventListener("change", function () { showKinds(form); });
      form.addEventListener("input", function () { showKinds(form); });
    });
    const box = document.getElementById("schedule-filter");
    if (box) box.addEventListener("input", filterRows);
    document.body.addEventListener("htmx:afterSwap", filterRows);
    followFires();
    // A refresh answered by the login page (the session ended): show that page, not a table of it.
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      const url = event.detail.xhr && event.detail.xhr.responseURL;
      if (url && url.indexOf("/panel/login") >= 0) { event.detail.shouldSwap = false; window.location.reload(); }
    });
  }
  // Live: each fire written, or schedule changed, refreshes the table, at most once a second however many at once.
  function followFires() {
    if (!document.getElementById("schedule-rows") || !window.EventSource) return;
    const stream = new EventSource("/api/v1/schedules-stream");
    let waiting = null;
    function refresh() {
      if (waiting) return;
      waiting = setTimeout(function () {
        waiting = null;
        const rows = document.getElementById("schedule-rows");
        if (rows && window.htmx) window.htmx.trigger(rows, "fired");
      }, 1000);
    }
    stream.addEventListener("fire", refresh);
    stream.addEventListener("changed", refresh);
    window.addEventListener("pagehide", function () { stream.close(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
