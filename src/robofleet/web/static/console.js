// The debug console: filter actions as you type, toggle raw JSON, and keep the result card and the history
// table live from the activity event stream (SSE). DOM updates use textContent only: no HTML from data.
(function () {
  "use strict";
  const search = document.getElementById("action-search");
  if (search) {
    search.addEventListener("input", function () {
      const needle = search.value.trim().toLowerCase();
      document.querySelectorAll("#action-list li").forEach(function (item) {
        const hit = !needle || item.dataset.name.toLowerCase().includes(needle) || item.dataset.summary.includes(needle);
        item.hidden = !hit;
      });
    });
    search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        const first = document.querySelector("#action-list li:not([hidden]) button");
        if (first) { event.preventDefault(); first.click(); }
      }
    });
  }

  document.addEventListener("change", function (event) {
    if (event.target && event.target.id === "use-raw") {
      document.getElementById("raw-box").hidden = !event.target.checked;
      document.getElementById("schema-fields").hidden = event.target.checked;
    }
  });

  const code = document.getElementById("python-code");
  if (code) {
    code.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        htmx.trigger(document.getElementById("python-form"), "submit");
      }
    });
  }

  const history = document.querySelector("#history tbody");
  if (!history) return;
  const filterAction = document.getElementById("filter-action");
  const filterState = document.getElementById("filter-state");
  const live = document.getElementById("live-state");

  function matches(activity) {
    return (!filterAction.value || activity.action.startsWith(filterAction.value)) &&
      (!filterState.value || activity.state === filterState.value);
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function outcome(activity) {
    if (activity.error) return activity.error.message || JSON.stringify(activity.error);
    if (activity.result !== null && activity.result !== undefined) return JSON.stringify(activity.result);
    return "";
  }

  function render(activity) {
    const row = document.createElement("tr");
    row.id = "activity-" + activity.id;
    row.dataset.state = activity.state;
    cell(row, String(activity.id));
    cell(row, activity.action, "mono");
    cell(row, activity.mode);
    const state = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "badge state-" + activity.state;
    badge.textContent = activity.state;
    state.appendChild(badge);
    row.appendChild(state);
    cell(row, activity.requested_by);
    cell(row, (activity.created_at || "").replace("T", " ").slice(0, 19));
    cell(row, activity.duration_ms === null || activity.duration_ms === undefined ? "" : String(activity.duration_ms));
    cell(row, outcome(activity), "mono");
    return row;
  }

  function show(activity) {
    const existing = document.getElementById("activity-" + activity.id);
    if (!matches(activity)) { if (existing) existing.remove(); return; }
    const row = render(activity);
    if (existing) existing.replaceWith(row); else history.prepend(row);
    while (history.rows.length > 200) history.deleteRow(-1);
    const card = document.querySelector('#activity-result[data-activity="' + activity.id + '"]');
    if (card) {
      const badge = card.querySelector('[data-field="state"]');
      badge.textContent = activity.state;
      badge.className = "badge state-" + activity.state;
      const value = activity.error || activity.result;
      card.querySelector('[data-field="output"]').textContent =
        value === null || value === undefined ? "waiting…" : JSON.stringify(value, null, 2);
    }
  }

  function load() {
    const query = new URLSearchParams({ limit: "50" });
    if (filterAction.value) query.set("action", filterAction.value);
    if (filterState.value) query.set("state", filterState.value);
    return fetch("/api/v1/activities?" + query.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (page) {
        history.replaceChildren();
        page.items.slice().reverse().forEach(show);
      });
  }

  [filterAction, filterState].forEach(function (input) {
    input.addEventListener("input", load);
    input.addEventListener("change", load);
  });
  document.getElementById("history-filter").addEventListener("submit", function (event) { event.preventDefault(); });

  load().then(function () {
    const stream = new EventSource("/api/v1/activities/stream");
    stream.addEventListener("open", function () { live.textContent = "live"; live.className = "badge ok"; });
    stream.addEventListener("error", function () { live.textContent = "reconnecting…"; live.className = "badge warn"; });
    stream.addEventListener("activity", function (event) { show(JSON.parse(event.data)); });
  });
})();
