// Fleet and robot pages, live: run transitions from /api/v1/runs-stream update the tables (and the robot page's
// buttons), and the robot page follows its robot's output from the log stream.
// Text only (textContent), never HTML from data.
(function () {
  "use strict";
  const live = document.getElementById("live-state");
  const ACTIVE = ["queued", "starting", "running", "paused", "stopping"];

  function badge(text, state) {
    const span = document.createElement("span");
    span.className = "badge state-" + state;
    span.textContent = text;
    return span;
  }

  // A run's version is its number of transitions. The catch-up fetch can answer with a state older than one the
  // stream has already shown (the fetch was answered before the change, the event arrived first): older loses.
  const versions = new Map();
  document.querySelectorAll("#runs tbody tr[data-version]").forEach(function (row) {
    versions.set(row.id.slice(4), Number(row.dataset.version));
  });
  function fresh(run) {
    const version = run.transitions.length;
    const key = String(run.id);
    if ((versions.get(key) || 0) > version) return false;
    versions.set(key, version);
    return true;
  }

  function show(run) {
    if (!fresh(run)) return;
    if (document.getElementById("fleet-robots")) onFleet(run);
    const table = document.getElementById("runs");
    if (table) onRobot(table, run);
  }

  function time(value) { return value ? value.replace("T", " ").slice(0, 19) : ""; }

  // As the robot page renders it (robots/panel.py how_paused): its last "paused" transition says how.
  function howPaused(run) {
    if (run.state !== "paused") return null;
    const last = run.transitions.slice().reverse().find(function (change) { return change.state === "paused"; });
    if (!last || !last.pause) return null;
    return last.reason ? last.pause + ": " + last.reason : last.pause;
  }

  function stateCell(cell, run) {
    cell.dataset.field = "state";
    cell.appendChild(badge(run.state, run.state));
    if (run.state === "running" && run.pause_asked_at) {
      const pausing = badge("pausing…", "running");
      pausing.className = "badge warn pausing";
      pausing.title = "Asked to pause: it holds at its next checkpoint";
      cell.append(" ", pausing);
    }
    if (run.state === "stopping" && run.stop_deadline) {
      const deadline = document.createElement("span");
      deadline.className = "muted stop-deadline";
      deadline.title = "Asked to stop: it is killed at this time unless it ends first";
      deadline.textContent = "killed at " + time(run.stop_deadline);
      cell.append(" ", deadline);
    }
    if (run.pending_action) {
      const pending = badge(run.pending_action + " pending", "running");
      pending.className = "badge warn pending";
      pending.title = "Asked while its agent was away: carried out when the agent is back";
      cell.append(" ", pending);
    }
    const how = howPaused(run);
    if (how) {
      const note = document.createElement("span");
      note.className = "muted how-paused";
      note.textContent = how;
      cell.append(" ", note);
    }
  }

  function onFleet(run) {
    const row = document.querySelector('#fleet-robots tr[data-robot="' + CSS.escape(run.robot) + '"]');
    // The row shows the robot's latest run: an older run's news (a late catch-up) does not replace it.
    if (!row || Number(row.dataset.run || 0) > run.id) return;
    row.dataset.run = String(run.id);
    const active = ACTIVE.includes(run.state);
    row.querySelector('[data-field="run"]').textContent = active ? "#" + run.id : "";
    // As fleet.html renders it: idle is never coloured by how the last run ended; the result says that.
    row.querySelector('[data-field="state"]').replaceChildren(active ? badge(run.state, run.state) : badge("idle", "idle"));
    const result = row.querySelector('[data-field="result"]');
    if (!active) {
      const link = document.createElement("a");
      link.href = "/panel/runs/" + run.id;
      link.className = "badge state-" + run.state;
      link.textContent = run.state;
      const ended = document.createElement("span");
      ended.className = "muted";
      ended.title = "when it ended (UTC)";
      ended.textContent = time(run.ended_at).slice(0, 16);
      result.replaceChildren(link, " ", ended);
      if (run.error) {
        const reason = document.createElement("span");
        reason.className = "reason";
        reason.textContent = run.error;
        result.append(" ", reason);
      }
    }
  }

  // The buttons fit the runs' states: fetched again (htmx) when one of this robot's runs changes.
  // Not while a button's own request is on its way: its answer replaces them (and says what was done).
  let controlsDue = null;
  function refreshControls() {
    const controls = document.getElementById("controls");
    if (!controls || !window.htmx || controlsDue) return;
    controlsDue = setTimeout(function () {
      controlsDue = null;
      const now = document.getElementById("controls");
      if (!now) return;
      if (now.querySelector(".htmx-request")) { refreshControls(); return; }
      window.htmx.trigger(now, "refresh");
    }, 150);
  }

  function onRobot(table, run) {
    if (run.robot !== table.dataset.robot) return;
    refreshControls();
    const tr = document.createElement("tr");
    tr.id = "run-" + run.id;
    tr.dataset.state = run.state;
    tr.dataset.version = String(run.transitions.length);
    const cells = [];
    for (let i = 0; i < 7; i++) { cells.push(document.createElement("td")); tr.appendChild(cells[i]); }
    const link = document.createElement("a");
    link.href = "/panel/logs?run_id=" + run.id;
    link.textContent = "#" + run.id;
    cells[0].appendChild(link);
    stateCell(cells[1], run);
    cells[2].textContent = run.pid || "";
    cells[3].textContent = run.exit_code === null ? "" : String(run.exit_code);
    if (run.leftovers) {
      const left = document.createElement("span");
      left.className = "muted leftovers";
      left.title = "Processes this run left behind, ended with it";
      left.textContent = " +" + run.leftovers + " left behind";
      cells[3].appendChild(left);
    }
    cells[4].textContent = time(run.started_at);
    cells[5].textContent = time(run.ended_at);
    cells[6].textContent = run.requested_by;
    const existing = document.getElementById("run-" + run.id);
    const body = table.querySelector("tbody");
    const empty = body.querySelector("tr.empty");
    if (empty) empty.remove();
    if (existing) existing.replaceWith(tr); else body.prepend(tr);
  }

  const runs = new EventSource("/api/v1/runs-stream");
  // Whatever changed between the page being rendered and the stream opening is fetched once the stream is open.
  function catchUp() {
    const table = document.getElementById("runs");
    const query = new URLSearchParams({ limit: table ? "50" : "500" });
    if (table) query.set("robot", table.dataset.robot);
    fetch("/api/v1/runs?" + query.toString(), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : { items: [] }; })
      .then(function (page) {
        page.items.slice().reverse().forEach(show);
      });
  }

  runs.addEventListener("open", function () {
    if (live) { live.textContent = "live"; live.className = "badge ok"; }
    catchUp();
  });
  runs.addEventListener("error", function () { if (live) { live.textContent = "reconnecting…"; live.className = "badge warn"; } });
  runs.addEventListener("run", function (event) {
    show(JSON.parse(event.data));
  });

  // The robot page's output: the server rendered its run's lines so far (up to record data-after); the stream goes
  // on from there, so nothing is missed or shown twice. Each line a span, marked by its level.
  const output = document.getElementById("output");
  if (output) {
    const query = new URLSearchParams({ source: output.dataset.source });
    if (output.dataset.after) query.set("after", output.dataset.after);
    const logs = new EventSource("/api/v1/logs/stream?" + query.toString());
    logs.addEventListener("log", function (event) {
      const record = JSON.parse(event.data);
      const stick = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
      const line = document.createElement("span");
      line.className = "line level-" + String(record.level).toLowerCase();
      line.textContent = (record.run_id ? "#" + record.run_id + " " : "") + record.message + "\n";
      output.appendChild(line);
      while (output.childNodes.length > 500) output.removeChild(output.firstChild);
      if (stick) output.scrollTop = output.scrollHeight;
    });
    output.scrollTop = output.scrollHeight;
  }
})();
