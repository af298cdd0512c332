// The Logs page: live tail over SSE with the page's filters (resuming after the newest row shown; new rows on top
// when newest first, at the bottom when oldest first), and a permalink to the filtered view. Rows are built with
// textContent: nothing from a record becomes HTML.
(function () {
  "use strict";
  const table = document.getElementById("log-table");
  if (!table) return;
  const body = table.querySelector("tbody");
  const toggle = document.getElementById("live-tail");
  const state = document.getElementById("tail-state");
  let stream = null;
  let lastId = Number(table.dataset.lastId || 0);
  const oldestFirst = table.dataset.order === "asc";  // new records then go at the bottom, as in the page

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function row(record) {
    const tr = document.createElement("tr");
    tr.className = "level-" + String(record.level).toLowerCase() + " fresh";
    tr.dataset.id = record.id;
    const cells = [];
    for (let i = 0; i < 5; i++) { cells.push(document.createElement("td")); tr.appendChild(cells[i]); }
    cells[0].className = "nowrap";
    cells[0].textContent = record.time.replace("T", " ").replace("Z", "");
    const level = document.createElement("span");
    level.className = "level";
    level.textContent = record.level;
    cells[1].appendChild(level);
    cells[2].className = "nowrap";
    cells[2].appendChild(link("/panel/logs?source=" + encodeURIComponent(record.source), record.source));
    if (record.run_id) cells[3].appendChild(link("/panel/logs?run_id=" + encodeURIComponent(record.run_id), record.run_id));
    cells[4].className = "message";
    cells[4].textContent = record.message;
    return tr;
  }

  function start() {
    const query = new URLSearchParams(table.dataset.query || "");
    query.set("after", String(lastId));
    stream = new EventSource("/api/v1/logs/stream?" + query.toString());
    state.hidden = false;
    state.textContent = "connecting…";
    stream.addEventListener("ready", function () { state.textContent = "live"; state.className = "badge ok"; });
    stream.addEventListener("error", function () { state.textContent = "reconnecting…"; state.className = "badge warn"; });
    stream.addEventListener("log", function (event) {
      const record = JSON.parse(event.data);
      if (record.id <= lastId) return;
      lastId = record.id;
      const empty = body.querySelector("tr.empty");
      if (empty) empty.remove();
      if (oldestFirst) {
        body.append(row(record));
        while (body.rows.length > 1000) body.deleteRow(0);
      } else {
        body.prepend(row(record));
        while (body.rows.length > 1000) body.deleteRow(-1);
      }
    });
  }

  function stop() {
    if (stream) stream.close();
    stream = null;
    state.hidden = true;
  }

  toggle.addEventListener("change", function () { toggle.checked ? start() : stop(); });
  if (new URLSearchParams(window.location.search).get("live") === "1") { toggle.checked = true; start(); }

  document.getElementById("copy-permalink").addEventListener("click", function () {
    const url = new URL(window.location.href);
    url.searchParams.delete("cursor");
    const text = url.toString();
    const done = function () { state.hidden = false; state.className = "badge"; state.textContent = "link copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { window.prompt("Copy this link:", text); });
    } else {
      window.prompt("Copy this link:", text);
    }
  });
})();
