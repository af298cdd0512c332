// The Runs page and a run's page (robots/panel_runs.py), live: a run's change on /api/v1/runs-stream refreshes the
// runs table (first page) or the run's facts and timeline through htmx; a running run's output is followed on the
// log stream after the last record shown, a traceback written line by line gathered in one block as the server
// does. On the Runs page j/k move between runs and Enter opens one. Text only (textContent), never HTML from data.
(function () {
  "use strict";
  const live = document.getElementById("live-state");
  const TRACEBACK = "Traceback (most recent call last):";
  const TICK_MS = 10000;  // durations of active runs move on: their rows are read again this often
  let pending = null;

  function refresh(id) {
    const part = document.getElementById(id);
    if (!part || !window.htmx) return;
    if (id === "run-rows" && !part.hasAttribute("data-live")) return;
    window.htmx.trigger(part, "refresh");
  }
  // At most one refresh a second however busy the fleet; none while the page is hidden (one when it shows again).
  let missed = false;
  function soon(id) {
    if (document.visibilityState !== "visible") { missed = true; return; }
    if (pending) return;
    pending = setTimeout(function () { pending = null; refresh(id); }, 1000);
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState !== "visible" || !missed) return;
    missed = false;
    soon(document.getElementById("run-rows") ? "run-rows" : "run-summary");
  });

  // ---- runs table: keep the keyboard's place across a refresh ------------------------------------------------
  let focusedRun = null;
  document.addEventListener("focusin", function (event) {
    const row = event.target instanceof Element ? event.target.closest("#run-rows tr[data-run]") : null;
    focusedRun = row ? row.dataset.run : null;
  });
  document.addEventListener("htmx:afterSwap", function () {
    if (!focusedRun) return;
    const link = document.querySelector('#run-rows tr[data-run="' + CSS.escape(focusedRun) + '"] a[data-open]');
    if (link) link.focus();
  });
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key !== "j" && event.key !== "k") return;
    const links = Array.prototype.slice.call(document.querySelectorAll("#run-rows a[data-open]"));
    if (!links.length) return;
    const at = links.indexOf(document.activeElement);
    const next = at < 0 ? 0 : event.key === "j" ? Math.min(at + 1, links.length - 1) : Math.max(at - 1, 0);
    event.preventDefault();
    links[next].focus();
  });

  // ---- the filter's "between" times count (and show) only for "between" --------------------------------------
  function showBetween() {
    const within = document.getElementById("within");
    if (!within) return;
    document.querySelectorAll("#runs-filter [data-between]").forEach(function (label) {
      label.hidden = within.value !== "between";
      label.querySelectorAll("input").forEach(function (input) { input.disabled = label.hidden; });
    });
  }
  const within = document.getElementById("within");
  if (within) { within.addEventListener("change", showBetween); showBetween(); }
  // An empty field says nothing: left out of the query, so that a filtered page's link reads as what it asks.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "runs-filter") return;
    form.querySelectorAll("input[name], select[name]").forEach(function (control) {
      if (!control.disabled && control.value === "" && control.type !== "checkbox") {
        control.disabled = true;
        setTimeout(function () { control.disabled = false; }, 0);  // for the page the back button brings back
      }
    });
  });

  // ---- runs as they change ----------------------------------------------------------------------------------------
  const runs = new EventSource("/api/v1/runs-stream");
  runs.addEventListener("open", function () {
    if (live) { live.textContent = "live"; live.className = "badge ok"; }
    soon(document.getElementById("run-rows") ? "run-rows" : "run-summary");  // what changed before it opened
  });
  runs.addEventListener("error", function () {
    if (live) { live.textContent = "reconnecting…"; live.className = "badge warn"; }
  });
  runs.addEventListener("run", function (event) {
    const run = JSON.parse(event.data);
    if (document.getElementById("run-rows")) soon("run-rows");
    const summary = document.getElementById("run-summary");
    if (summary && summary.dataset.run === String(run.id)) soon("run-summary");
  });
  setInterval(function () {
    if (document.visibilityState !== "visible") return;
    if (document.querySelector("#run-rows tr[data-active]")) soon("run-rows");
    const summary = document.getElementById("run-summary");
    if (summary && summary.hasAttribute("data-active")) soon("run-summary");
  }, TICK_MS);

  // ---- a running run's output -------------------------------------------------------------------------------------
  const lines = document.getElementById("output-lines");
  if (lines && lines.hasAttribute("data-live")) {
    let block = null;  // a traceback being written a line a record
    const query = new URLSearchParams({ run_id: lines.dataset.run, source: "robot:*" });
    if (lines.dataset.after) query.set("after", lines.dataset.after);
    const last = lines.lastElementChild;
    if (last && last.classList.contains("output-line") && last.querySelector("pre").textContent.trim() === TRACEBACK) {
      block = last;
    }
    const logs = new EventSource("/api/v1/logs/stream?" + query.toString());
    logs.addEventListener("log", function (event) {
      const record = JSON.parse(event.data);
      if (lines.querySelector('[data-id="' + record.id + '"]')) return;
      const stream = (record.fields && record.fields.stream) || "";
      const message = String(record.message);
      if (block && block.dataset.stream === stream) {
        block.querySelector("pre").textContent += "\n" + message;
        if (message && !/^\s/.test(message)) block = null;
        return;
      }
      block = null;
      const empty = document.getElementById("output-empty");
      if (empty) empty.remove();
      const line = document.createElement("div");
      line.className = "output-line fresh level-" + String(record.level).toLowerCase();
      if (message.indexOf(TRACEBACK) >= 0) line.classList.add("traceback");
      line.dataset.id = String(record.id);
      line.dataset.stream = stream;
      const when = document.createElement("span");
      when.className = "when";
      when.title = record.time;
      when.textContent = String(record.time).slice(11, 23);
      const level = document.createElement("span");
      level.className = "level";
      level.textContent = record.level;
      const text = document.createElement("pre");
      text.className = "text";
      text.textContent = message;
      line.append(when, level, text);
      const follow = lines.scrollTop + lines.clientHeight >= lines.scrollHeight - 4;
      lines.appendChild(line);
      if (follow) lines.scrollTop = lines.scrollHeight;
      if (message.trim() === TRACEBACK) block = line;
    });
  }
})();
