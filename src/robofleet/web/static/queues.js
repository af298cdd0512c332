// Queues pages: the figures and tables refreshed while the page is open and visible (queues publish no event to
// follow); the queues filter; the items filter's "between" times; ticking items (select all, Shift+click ranges,
// j/k/x on the keyboard) and the buttons that act on them; and the upload of a CSV, JSON or NDJSON file, read here
// and sent through the API's add route in parts, so that the progress bar counts what the server has taken, each
// malformed row or refused item reported with its line. Text only (textContent), never HTML from data.
(function () {
  "use strict";
  const REFRESH_MS = 5000;
  const ITEM_FIELDS = ["reference", "priority", "payload", "deadline", "postpone_until"];
  const TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:\d{2})$/;
  const SHOWN_PROBLEMS = 500;
  let uploading = false;

  // ---- live ------------------------------------------------------------------------------------------------------

  function selected() {
    return Array.prototype.slice.call(document.querySelectorAll("#item-rows input[name=id]:checked"));
  }
  function refresh(force) {
    if (!window.htmx || (!force && document.visibilityState !== "visible")) return;
    document.querySelectorAll("[data-live]").forEach(function (part) {
      if (part.id === "item-rows") {
        // Not under the reader's hands: nothing ticked, nothing focused in the table, no upload on its way.
        const table = part.closest("table");
        if (!force && (uploading || selected().length || (table && table.contains(document.activeElement)))) return;
        if (force && selected().length) return;
      }
      window.htmx.trigger(part, "refresh");
    });
  }

  // ---- the queues list's filter ------------------------------------------------------------------------------------

  function filterQueues() {
    const box = document.getElementById("queue-filter");
    if (!box) return;
    const words = box.value.toLowerCase().split(/\s+/).filter(Boolean);
    document.querySelectorAll("#queues tr[data-search]").forEach(function (row) {
      const text = row.dataset.search.toLowerCase();
      row.hidden = !words.every(function (word) { return text.indexOf(word) >= 0; });
    });
  }

  // ---- the items filter: the typed times count (and show) only for "between" -----------------------------------

  function showBetween() {
    const within = document.getElementById("within");
    if (!within) return;
    document.querySelectorAll("[data-between]").forEach(function (label) {
      label.hidden = within.value !== "between";
      label.querySelectorAll("input").forEach(function (input) { input.disabled = label.hidden; });
    });
  }

  // An empty field says nothing: left out of the query, so that a filtered page's link reads as what it asks.
  function tidyQuery(event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || form.id !== "item-filter") return;
    form.querySelectorAll("input[name], select[name]").forEach(function (control) {
      if (!control.disabled && control.value === "" && control.type !== "checkbox") {
        control.disabled = true;
        setTimeout(function () { control.disabled = false; }, 0);  // for the page the back button brings back
      }
    });
  }

  // ---- ticking items ---------------------------------------------------------------------------------------------

  let lastTicked = null;
  function boxes() {
    return Array.prototype.slice.call(document.querySelectorAll("#item-rows input[name=id]"));
  }
  function updateSelection() {
    const count = document.getElementById("selected-count");
    if (!count) return;
    const ticked = selected();
    const rows = ticked.map(function (box) { return box.closest("tr"); });
    const retryable = rows.filter(function (row) { return row.hasAttribute("data-retryable"); }).length;
    const deletable = rows.filter(function (row) { return row.hasAttribute("data-deletable"); }).length;
    count.textContent = ticked.length
      ? ticked.length + " selected (" + retryable + " can be retried, " + deletable + " deleted)"
      : "None selected";
    document.getElementById("retry-selected").disabled = retryable === 0;
    document.getElementById("delete-selected").disabled = deletable === 0;
    const all = document.getElementById("select-all");
    const every = boxes();
    if (all) {
      all.checked = every.length > 0 && ticked.length === every.length;
      all.indeterminate = ticked.length > 0 && ticked.length < every.length;
    }
    rows.forEach(function (row) { row.classList.add("ticked"); });
    every.forEach(function (box) { if (!box.checked) box.closest("tr").classList.remove("ticked"); });
  }
  function onTick(event) {
    const box = event.target;
    if (!(box instanceof HTMLInputElement) || box.type !== "checkbox") return;
    if (box.id === "select-all") {
      boxes().forEach(function (each) { each.checked = box.checked; });
    } else if (box.name === "id" && box.closest("#item-rows")) {
      const every = boxes();
      if (event.shiftKey && lastTicked && every.indexOf(lastTicked) >= 0) {
        const from = every.indexOf(lastTicked), to = every.indexOf(box);
        every.slice(Math.min(from, to), Math.max(from, to) + 1).forEach(function (each) { each.checked = box.checked; });
      }
      lastTicked = box;
    } else {
      return;
    }
    updateSelection();
  }

  // j / k move between the items (their id links: Enter opens one), x ticks the current one.
  let afterG = false;
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || !document.getElementById("item-rows")) return;
    const target = event.target;
    const inTable = target instanceof HTMLElement && target.closest("#item-rows") !== null;
    const typing = target instanceof HTMLElement && !inTable &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].indexOf(target.tagName) >= 0);
    if (typing) return;
    if (afterG) { afterG = false; return; }  // "g <key>" belongs to panel.js
    if (event.key === "g") { afterG = true; setTimeout(function () { afterG = false; }, 1500); return; }
    const links = Array.prototype.slice.call(document.querySelectorAll("#item-rows a[data-open]"));
    if (!links.length) return;
    const row = inTable ? target.closest("tr") : null;
    const at = row ? links.indexOf(row.querySelector("a[data-open]")) : -1;
    if (event.key === "j" || event.key === "k") {
      event.preventDefault();
      const next = at < 0 ? 0 : Math.max(0, Math.min(links.length - 1, at + (event.key === "j" ? 1 : -1)));
      links[next].focus();
      links[next].closest("tr").scrollIntoView({ block: "nearest" });
    } else if (event.key === "x" && row) {
      const box = row.querySelector("input[name=id]");
      if (box) {
        event.preventDefault();
        box.checked = !box.checked;
        lastTicked = box;
        updateSelection();
      }
    }
  }

  // A button that acts on the ticked items may ask first (panel.js asks for whole forms).
  function onSubmit(event) {
    const button = event.submitter;
    if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) event.preventDefault();
  }

  // ---- reading a file into items -----------------------------------------------------------------------------------

  // CSV records with the line each starts on (a quoted value may hold line breaks); a record that is no CSV says why.
  function parseCsv(text) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const separator = sniff(text);
    const records = [];
    let fields = [], field = "", quoted = false, closed = false, problem = null, line = 1, start = 1;
    function endField() { fields.push(field); field = ""; closed = false; }
    function endRecord() {
      endField();
      if (!(fields.length === 1 && fields[0] === "" && !problem)) records.push({ line: start, fields: fields, problem: problem });
      fields = []; problem = null;
    }
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (quoted) {
        if (ch === '"') {
          if (text[i + 1] === '"') { field += '"'; i++; } else { quoted = false; closed = true; }
        } else {
          if (ch === "\n") line++;
          field += ch;
        }
      } else if (ch === separator) {
        endField();
      } else if (ch === "\r" || ch === "\n") {
        endRecord();
        if (ch === "\r" && text[i + 1] === "\n") i++;
        line++; start = line;
      } else if (ch === '"' && field === "" && !closed) {
        quoted = true;
      } else {
        if (closed && !problem) problem = "text after a closing quote (a quote inside a value must be doubled: \"\")";
        field += ch;
      }
    }
    if (quoted) {
      return { records: records, separator: separator, unclosed: start };
    }
    if (field !== "" || fields.length || closed) endRecord();
    return { records: records, separator: separator, unclosed: null };
  }
  function sniff(text) {
    const first = text.slice(0, text.search(/\r|\n/) >= 0 ? text.search(/\r|\n/) : text.length);
    const counts = [",", ";", "\t"].map(function (sep) { return [sep, first.split(sep).length - 1]; });
    counts.sort(function (a, b) { return b[1] - a[1]; });
    return counts[0][1] > 0 ? counts[0][0] : ",";
  }

  function bytes(text) { return new TextEncoder().encode(text).length; }
  function isObject(value) { return value !== null && typeof value === "object" && !Array.isArray(value); }
  function shown(value) {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return JSON.stringify(text.length > 60 ? text.slice(0, 60) + "…" : text);
  }

  // An item's fields checked as the API checks them; the error's message, or null.
  function checkItem(item, limits) {
    if (item.reference !== undefined && item.reference !== null) {
      if (typeof item.reference !== "string" || !item.reference.length || item.reference.length > 256) {
        return "reference must be text of 1 to 256 characters";
      }
    }
    if (item.priority !== undefined && item.priority !== null) {
      if (!Number.isInteger(item.priority) || item.priority < 0 || item.priority > 1000) {
        return "priority must be a whole number from 0 to 1000, got " + shown(item.priority);
      }
    }
    for (const key of ["deadline", "postpone_until"]) {
      if (item[key] === undefined || item[key] === null) continue;
      const text = typeof item[key] === "string" ? item[key].trim() : "";
      if (!TIME.test(text) || isNaN(Date.parse(text.replace(" ", "T")))) {
        return key + " must be an ISO time with its offset, e.g. 2026-12-31T17:00:00+01:00, got " + shown(item[key]);
      }
      item[key] = text.replace(" ", "T");
    }
    if (item.payload !== undefined && !isObject(item.payload)) return "payload must be a JSON object";
    const size = bytes(JSON.stringify(item.payload || {}));
    if (size > limits.maxPayload) {
      return "payload is " + size.toLocaleString("en") + " bytes of JSON, over the limit of " +
        limits.maxPayload.toLocaleString("en");
    }
    return null;
  }

  // {rows: [{line, label, item}], problems: [{line, label, message}]}
  function csvItems(text, limits) {
    const parsed = parseCsv(text);
    const rows = [], problems = [];
    const header = parsed.records[0];
    if (!header) {
      problems.push({ line: 1, label: "Line 1", message: "the file has no header line" });
      return { rows: rows, problems: problems };
    }
    const names = header.fields.map(function (name) { return name.trim(); });
    const seen = {};
    for (let index = 0; index < names.length; index++) {
      const name = names[index];
      const key = ITEM_FIELDS.indexOf(name.toLowerCase()) >= 0 ? name.toLowerCase() : name;
      const why = !name ? "column " + (index + 1) + " of the header has no name"
        : seen[key] ? "the header names " + shown(name) + " twice" : null;
      if (why) {
        problems.push({ line: header.line, label: "Line " + header.line, message: why + ": nothing was read" });
        return { rows: rows, problems: problems };
      }
      seen[key] = true;
    }
    parsed.records.slice(1).forEach(function (record) {
      const label = "Line " + record.line;
      function refuse(message) { problems.push({ line: record.line, label: label, message: message }); }
      if (record.problem) return refuse(record.problem);
      if (record.fields.length !== names.length) {
        return refuse(record.fields.length + " value(s), the header has " + names.length + " column(s)");
      }
      const item = {}, extra = {};
      let problem = null;
      names.forEach(function (name, index) {
        const value = record.fields[index];
        const key = name.toLowerCase();
        if (ITEM_FIELDS.indexOf(key) < 0) { extra[name] = value; return; }
        if (value.trim() === "" || problem) return;
        if (key === "priority") {
          item.priority = /^\s*\d+\s*$/.test(value) ? Number(value) : value;
        } else if (key === "payload") {
          try { item.payload = JSON.parse(value); } catch (error) { problem = "payload is not JSON: " + error.message; }
        } else {
          item[key] = key === "reference" ? value : value.trim();
        }
      });
      if (problem) return refuse(problem);
      if (item.payload !== undefined && !isObject(item.payload)) return refuse("payload must be a JSON object");
      item.payload = Object.assign({}, item.payload || {}, extra);
      problem = checkItem(item, limits);
      if (problem) return refuse(problem);
      rows.push({ line: record.line, label: label, item: item });
    });
    if (parsed.unclosed !== null) {
      problems.push({
        line: parsed.unclosed, label: "Line " + parsed.unclosed,
        message: "a quoted value is never closed: this line and every one after it were left out",
      });
    }
    return { rows: rows, problems: problems };
  }

  // The line each element of a JSON array starts on (JSON.parse does not say).
  function elementLines(text) {
    const lines = [];
    let depth = 0, inString = false, escaped = false, line = 1, expecting = false;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch === "\n") line++;
      if (inString) {
        if (escaped) escaped = false;
        else if (ch === "\\") escaped = true;
        else if (ch === '"') inString = false;
        continue;
      }
      if (depth === 1 && expecting && !/\s/.test(ch) && ch !== "," && ch !== "]") { lines.push(line); expecting = false; }
      if (ch === '"') inString = true;
      else if (ch === "[" || ch === "{") { depth++; if (depth === 1) expecting = true; }
      else if (ch === "]" || ch === "}") depth--;
      else if (ch === "," && depth === 1) expecting = true;
    }
    return lines;
  }

  function jsonItem(value, limits) {
    if (!isObject(value)) return { problem: "an item must be a JSON object" };
    const unknown = Object.keys(value).filter(function (key) { return ITEM_FIELDS.indexOf(key) < 0; });
    if (unknown.length) {
      return { problem: "unknown field " + shown(unknown[0]) + " (an item has " + ITEM_FIELDS.join(", ") + ")" };
    }
    const item = Object.assign({}, value);
    const problem = checkItem(item, limits);
    return problem ? { problem: problem } : { item: item };
  }

  function jsonItems(text, limits) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const rows = [], problems = [];
    if (text.trimStart().startsWith("[")) {
      let data;
      try { data = JSON.parse(text); } catch (error) {
        problems.push({ line: 1, label: "The file", message: "is not valid JSON: " + error.message });
        return { rows: rows, problems: problems };
      }
      const lines = elementLines(text);
      data.forEach(function (value, index) {
        const line = lines[index] || 1;
        const label = "Line " + line + " (item " + (index + 1) + ")";
        const found = jsonItem(value, limits);
        if (found.problem) problems.push({ line: line, label: label, message: found.problem });
        else rows.push({ line: line, label: label, item: found.item });
      });
      return { rows: rows, problems: problems };
    }
    text.split(/\r?\n/).forEach(function (source, index) {
      if (!source.trim()) return;
      const line = index + 1, label = "Line " + line;
      let value;
      try { value = JSON.parse(source); } catch (error) {
        problems.push({ line: line, label: label, message: "not JSON: " + error.message });
        return;
      }
      const found = jsonItem(value, limits);
      if (found.problem) problems.push({ line: line, label: label, message: found.problem });
      else rows.push({ line: line, label: label, item: found.item });
    });
    return { rows: rows, problems: problems };
  }

  function itemsOf(name, text, limits) {
    const json = /\.(json|ndjson|jsonl)$/i.test(name) || /^\s*[[{]/.test(text.slice(0, 200).replace(/^\ufeff/, ""));
    return json ? jsonItems(text, limits) : csvItems(text, limits);
  }

  // ---- sending them in parts -------------------------------------------------------------------------------------

  // Parts of at most `count` rows whose request body fits `maxBody`.
  function parts(rows, count, maxBody) {
    const found = [];
    let current = [], size = 16;
    rows.forEach(function (row) {
      row.size = row.size || bytes(JSON.stringify(row.item)) + 1;
      if (current.length && (current.length >= count || size + row.size > maxBody - 256)) {
        found.push(current); current = []; size = 16;
      }
      current.push(row); size += row.size;
    });
    if (current.length) found.push(current);
    return found;
  }

  function itemIndexes(error) {
    const details = error && error.details;
    const list = Array.isArray(details) ? details : details ? [details] : [];
    const found = new Map();
    list.forEach(function (detail) {
      const match = /^items\.(\d+)/.exec(String(detail.field || ""));
      if (match && !found.has(Number(match[1]))) found.set(Number(match[1]), detail.message || error.message);
    });
    return found;
  }

  function startUpload(form) {
    const input = form.querySelector("input[type=file]");
    const progress = document.getElementById("upload-progress");
    const status = document.getElementById("upload-status");
    const list = document.getElementById("upload-problems");
    const startButton = document.getElementById("upload-start");
    const cancel = document.getElementById("upload-cancel");
    const limits = { maxPayload: Number(form.dataset.maxPayload) };
    const partSize = Number(form.dataset.part) || 1000;
    const maxBody = Number(form.dataset.maxBody) || 1048576;
    const url = "/api/v1/queues/" + encodeURIComponent(form.dataset.queue) + "/items";
    let cancelled = false;
    const problems = [];

    function say(text) { status.textContent = text; }
    function showProblems() {
      list.textContent = "";
      problems.sort(function (a, b) { return a.line - b.line; });
      problems.slice(0, SHOWN_PROBLEMS).forEach(function (problem) {
        const entry = document.createElement("li");
        entry.dataset.line = String(problem.line);
        entry.textContent = problem.label + ": " + problem.message;
        list.appendChild(entry);
      });
      if (problems.length > SHOWN_PROBLEMS) {
        const more = document.createElement("li");
        more.textContent = "… and " + (problems.length - SHOWN_PROBLEMS).toLocaleString("en") + " more";
        list.appendChild(more);
      }
      list.hidden = problems.length === 0;
    }
    function finish(text) {
      uploading = false;
      startButton.disabled = false;
      input.disabled = false;
      cancel.hidden = true;
      say(text);
      showProblems();
      refresh(true);
    }

    const file = input.files && input.files[0];
    if (!file) { say("Choose a file first."); input.focus(); return; }
    uploading = true;
    startButton.disabled = true;
    input.disabled = true;
    list.hidden = true;
    progress.hidden = false;
    progress.removeAttribute("value");  // indeterminate while the file is read
    say("Reading " + file.name + "…");
    file.text().then(function (text) {
      const read = itemsOf(file.name, text, limits);
      read.problems.forEach(function (problem) { problems.push(problem); });
      const total = read.rows.length + read.problems.length;
      if (!read.rows.length || (form.querySelector("#upload-strict").checked && read.problems.length)) {
        progress.max = 1; progress.value = 0;
        finish(read.rows.length
          ? "Nothing was added: " + read.problems.length + " malformed row(s); fix them or untick \"Add nothing if a row is malformed\"."
          : "Nothing to add: no usable row in " + file.name + ".");
        return;
      }
      const queue = parts(read.rows, partSize, maxBody);
      let done = read.problems.length, added = 0, refused = 0;
      progress.max = total;
      progress.value = done;
      cancel.hidden = false;
      cancel.onclick = function () { cancelled = true; cancel.disabled = true; };
      cancel.disabled = false;
      function line() {
        return done.toLocaleString("en") + " of " + total.toLocaleString("en") + " rows: " +
          added.toLocaleString("en") + " added, " + refused.toLocaleString("en") + " refused, " +
          read.problems.length.toLocaleString("en") + " malformed";
      }
      say("Sending " + line() + "…");
      function next() {
        if (!queue.length) { finish("Done. " + line() + "."); return; }
        if (cancelled) {
          const left = queue.reduce(function (sum, part) { return sum + part.length; }, 0);
          finish("Stopped: " + line() + "; " + left.toLocaleString("en") + " row(s) not sent.");
          return;
        }
        const part = queue.shift();
        fetch(url, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
          body: JSON.stringify({ items: part.map(function (row) { return row.item; }) }),
        }).then(function (answer) {
          return answer.json().catch(function () { return {}; }).then(function (body) { return [answer, body]; });
        }).then(function (pair) {
          const answer = pair[0], body = pair[1];
          if (answer.status === 201) {
            added += body.ids.length;
            body.refused.forEach(function (refusal) {
              const row = part[refusal.index];
              refused++;
              problems.push({ line: row.line, label: row.label, message: refusal.message });
            });
            done += part.length;
          } else if (answer.status === 413 || answer.status === 422) {
            const bad = itemIndexes(body.error);
            if (bad.size) {
              bad.forEach(function (message, index) {
                const row = part[index];
                if (!row) return;
                refused++;
                problems.push({ line: row.line, label: row.label, message: message });
              });
              const rest = part.filter(function (_, index) { return !bad.has(index); });
              done += part.length - rest.length;
              if (rest.length) queue.unshift(rest);
            } else if (answer.status === 413 && part.length > 1) {
              const half = Math.ceil(part.length / 2);
              queue.unshift(part.slice(0, half), part.slice(half));
            } else {
              const row = part[0];
              refused += part.length;
              done += part.length;
              problems.push({ line: row.line, label: row.label, message: (body.error && body.error.message) || answer.statusText });
            }
          } else {
            const message = (body.error && body.error.message) || answer.statusText;
            queue.unshift(part);
            cancelled = true;
            problems.push({ line: part[0].line, label: part[0].label, message: "not sent: " + answer.status + " " + message });
          }
          progress.value = done;
          say("Sending " + line() + "…");
          next();
        }).catch(function (error) {
          queue.unshift(part);
          cancelled = true;
          problems.push({ line: part[0].line, label: part[0].label, message: "not sent: " + error.message });
          next();
        });
      }
      next();
    }, function (error) {
      finish("Cannot read " + file.name + ": " + error.message);
    });
  }

  // ---- start -----------------------------------------------------------------------------------------------------

  function start() {
    const box = document.getElementById("queue-filter");
    if (box) box.addEventListener("input", filterQueues);
    const within = document.getElementById("within");
    if (within) { within.addEventListener("change", showBetween); showBetween(); }
    document.addEventListener("click", onTick);  // a click (Space too) says whether Shift was held; a change not
    document.addEventListener("keydown", onKey);
    document.addEventListener("submit", onSubmit, true);
    document.addEventListener("submit", tidyQuery);
    const upload = document.getElementById("upload");
    if (upload) upload.addEventListener("submit", function (event) { event.preventDefault(); startUpload(upload); });
    document.body.addEventListener("htmx:afterSwap", function () { filterQueues(); updateSelection(); });
    // A refresh answered by the login page (the session ended): show that page, not a table of it.
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      const answered = event.detail.xhr && event.detail.xhr.responseURL;
      if (answered && answered.indexOf("/panel/login") >= 0) { event.detail.shouldSwap = false; window.location.reload(); }
    });
    updateSelection();
    setInterval(refresh, REFRESH_MS);
  }
  // What tests and a console may call: the file reading, without a page's form.
  window.robofleetQueueFiles = { parseCsv: parseCsv, itemsOf: itemsOf, elementLines: elementLines };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
