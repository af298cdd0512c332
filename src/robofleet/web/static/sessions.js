// Sessions pages, live. The grid refreshes the thumbnail of each card on screen every few seconds while the tab is
// visible; the full view asks for the next frame as soon as the last one arrived (at most one request in flight,
// never faster than data-frame-ms). Both send the frame's ETag back (If-None-Match): an unchanged screen costs a
// 304 and no decoding. States follow /api/v1/sessions-stream. With Control on, the full view sends clicks, the
// wheel, keys and text to the robot's display through the API (sessions:control; the API refuses anyone else).
// A run's page asks again for its evidence section while the agent may still be sending it.
// Text only (textContent), never HTML from data.
(function () {
  "use strict";
  if (window.robofleetSessions) return;  // loaded again by a swapped section: one start is enough
  window.robofleetSessions = true;
  const API = "/api/v1/sessions/";

  // ---- frames ----------------------------------------------------------------------------------------------------

  // A frame is shown from a blob: URL; a Content-Security-Policy without blob: in img-src makes the image fail to
  // load, and from then on frames go in as data: URLs (one base64 copy more, nothing else).
  let dataUrls = false;

  function Screen(img, box, note) {
    this.img = img;
    this.box = box;
    this.note = note;
    this.etag = null;
    this.url = null;
    this.busy = false;
    this.shown = false;
    this.screenWidth = Number(img.getAttribute("width")) || 0;
    this.screenHeight = Number(img.getAttribute("height")) || 0;
  }

  Screen.prototype.say = function (text, stale) {
    this.note.textContent = text;
    this.box.classList.toggle("stale", !!stale);
  };

  // Asks for a frame; resolves to "new", "same" or "error" once it is shown (or not).
  Screen.prototype.load = function () {
    const screen = this;
    if (screen.busy) return Promise.resolve("busy");
    screen.busy = true;
    const headers = {};
    if (screen.etag) headers["If-None-Match"] = screen.etag;
    return fetch(screen.img.dataset.src, { credentials: "same-origin", cache: "no-store", headers: headers })
      .then(function (answer) {
        if (answer.status === 304) { screen.box.classList.remove("stale"); return "same"; }
        if (!answer.ok) {
          return answer.json().catch(function () { return {}; }).then(function (body) {
            const message = (body.error && body.error.message) || answer.status + " " + answer.statusText;
            screen.say(answer.status === 401 ? "signed out: reload the page to sign in" : message, true);
            return "error";
          });
        }
        screen.etag = answer.headers.get("ETag");
        const width = Number(answer.headers.get("X-Screen-Width"));
        const height = Number(answer.headers.get("X-Screen-Height"));
        if (width && height) { screen.screenWidth = width; screen.screenHeight = height; }
        return answer.blob().then(function (blob) { return screen.show(blob); });
      })
      .catch(function (error) { screen.say("no connection: " + error.message, true); return "error"; })
      .finally(function () { screen.busy = false; });
  };

  Screen.prototype.show = function (blob) {
    const screen = this;
    return new Promise(function (resolve) {
      const img = screen.img;
      const previous = screen.url;
      function loaded() {
        img.hidden = false;
        screen.shown = true;
        screen.box.classList.remove("stale");
        if (previous && previous.indexOf("blob:") === 0) URL.revokeObjectURL(previous);
        resolve("new");
      }
      function failed(url) {
        if (url.indexOf("blob:") === 0) {
          URL.revokeObjectURL(url);
          if (!dataUrls) { dataUrls = true; screen.show(blob).then(resolve); return; }
        }
        screen.etag = null;
        screen.say("the image could not be shown", true);
        resolve("error");
      }
      function put(url) {
        screen.url = url;
        img.onload = loaded;
        img.onerror = function () { failed(url); };
        img.src = url;
      }
      if (!dataUrls) { put(URL.createObjectURL(blob)); return; }
      const reader = new FileReader();
      reader.onload = function () { put(String(reader.result)); };
      reader.onerror = function () { resolve("error"); };
      reader.readAsDataURL(blob);
    });
  };

  // Where a point of the element is on the robot's screen (the image keeps its proportions inside its box); null
  // outside the picture.
  Screen.prototype.pointOf = function (event) {
    const img = this.img;
    const rect = img.getBoundingClientRect();
    const natural = { w: img.naturalWidth || this.screenWidth, h: img.naturalHeight || this.screenHeight };
    const scale = Math.min(rect.width / natural.w, rect.height / natural.h);
    const left = (rect.width - natural.w * scale) / 2, top = (rect.height - natural.h * scale) / 2;
    const x = (event.clientX - rect.left - left) / scale, y = (event.clientY - rect.top - top) / scale;
    if (x < 0 || y < 0 || x >= natural.w || y >= natural.h) return null;
    return {
      x: Math.min(this.screenWidth - 1, Math.floor(x * this.screenWidth / natural.w)),
      y: Math.min(this.screenHeight - 1, Math.floor(y * this.screenHeight / natural.h)),
    };
  };

  // ---- the stream ------------------------------------------------------------------------------------------------

  function follow(onSession, onOpen, onDeleted) {
    const live = document.getElementById("live-state");
    if (!window.EventSource) { if (live) live.textContent = "not live"; return; }
    const stream = new EventSource("/api/v1/sessions-stream");
    stream.addEventListener("open", function () {
      if (live) { live.textContent = "live"; live.className = "badge ok"; }
      onOpen();  // whatever changed before the stream was open
    });
    stream.addEventListener("error", function () {
      if (live) { live.textContent = "reconnecting…"; live.className = "badge warn"; }
    });
    stream.addEventListener("session", function (event) {
      let session;
      try { session = JSON.parse(event.data); } catch (error) { return; }
      if (session && session.name) onSession(session);
    });
    stream.addEventListener("session_deleted", function (event) {
      let gone;
      try { gone = JSON.parse(event.data); } catch (error) { return; }
      if (gone && gone.name) onDeleted(gone.name);
    });
    window.addEventListener("pagehide", function () { stream.close(); });
  }

  function badge(state, reason) {
    const span = document.createElement("span");
    span.className = "badge s-" + state;
    span.dataset.field = "state";
    span.textContent = state;
    if (reason) span.title = reason;
    return span;
  }

  function noScreen(session) {
    return session.state_reason || "no screen: " + session.state;
  }

  function time(value) { return value ? String(value).replace("T", " ").slice(0, 19) : "—"; }

  function visible() { return document.visibilityState === "visible"; }

  // ---- the grid --------------------------------------------------------------------------------------------------

  function startGrid(grid) {
    const period = (Number(grid.dataset.thumbSeconds) || 2) * 1000;
    const screens = new Map();  // card → Screen
    const onScreen = new Set();
    const observer = "IntersectionObserver" in window ? new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { onScreen.add(entry.target); refreshCard(entry.target); }
        else onScreen.delete(entry.target);
      });
    }, { rootMargin: "100px" }) : null;

    function watch(card) {
      const img = card.querySelector("img.thumb");
      if (!img) return;
      screens.set(card, new Screen(img, card.querySelector(".screen-box"), card.querySelector("[data-field=note]")));
      if (observer) observer.observe(card);
      else onScreen.add(card);
    }
    function refreshCard(card) {
      const screen = screens.get(card);
      if (!screen || card.hidden || !visible()) return;
      if (card.dataset.state !== "healthy") return;
      screen.load();
    }
    function tick() { onScreen.forEach(refreshCard); }

    grid.querySelectorAll(".session-card").forEach(watch);
    setInterval(tick, period);
    document.addEventListener("visibilitychange", function () { if (visible()) tick(); });

    // Filters: by agent, state and words, kept in the address so a reload or a shared link shows the same.
    const form = document.getElementById("session-filter");
    const count = document.getElementById("shown-count");
    function applyFilter() {
      if (!form) return;
      const agent = form.elements.agent.value, state = form.elements.state.value;
      const words = form.elements.q.value.toLowerCase().split(/\s+/).filter(Boolean);
      let shown = 0, total = 0;
      grid.querySelectorAll(".session-card").forEach(function (card) {
        total++;
        const text = (card.dataset.search || "").toLowerCase();
        card.hidden = (agent && card.dataset.agent !== agent) || (state && card.dataset.state !== state) ||
          !words.every(function (word) { return text.indexOf(word) >= 0; });
        if (!card.hidden) shown++;
      });
      if (count) count.textContent = total ? shown + " of " + total + " shown" : "";
      const none = document.getElementById("no-match");
      if (none) none.hidden = shown > 0 || total === 0;
      const params = new URLSearchParams();
      if (agent) params.set("agent", agent);
      if (state) params.set("state", state);
      if (form.elements.q.value) params.set("q", form.elements.q.value);
      const query = params.toString();
      history.replaceState(null, "", location.pathname + (query ? "?" + query : ""));
      tick();
    }
    if (form) {
      form.addEventListener("input", applyFilter);
      form.addEventListener("change", applyFilter);
      form.addEventListener("submit", function (event) { event.preventDefault(); applyFilter(); });
      applyFilter();
    }

    function update(session) {
      const card = document.getElementById("session-" + session.name);
      if (!card) { reloadCards(); return; }
      const was = card.dataset.state;
      card.dataset.state = session.state;
      const old = card.querySelector("[data-field=state]");
      if (old) old.replaceWith(badge(session.state, session.state_reason));
      const reason = card.querySelector("[data-field=reason]");
      reason.textContent = session.state_reason || "";
      reason.hidden = !session.state_reason;
      card.querySelector("[data-field=restarts]").textContent = session.restarts;
      card.querySelector("[data-field=display]").textContent = session.actual_display || session.display || "—";
      const screen = screens.get(card);
      if (screen && session.state !== "healthy") screen.say(noScreen(session), screen.shown);
      if (screen && session.state === "healthy" && was !== "healthy") { screen.etag = null; refreshCard(card); }
      applyFilter();
    }
    // A session this page does not show yet: the cards again, as the server draws them.
    let reloading = false;
    function reloadCards() {
      if (reloading) return;
      reloading = true;
      fetch(location.pathname + "?part=cards", { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.text() : null; })
        .then(function (html) {
          if (html === null) return;
          grid.querySelectorAll(".session-card").forEach(function (card) { if (observer) observer.unobserve(card); });
          screens.clear();
          onScreen.clear();
          grid.innerHTML = html;  // the server's own escaped template, as htmx would swap it
          const empty = document.getElementById("no-sessions");
          if (empty && grid.children.length) empty.hidden = true;
          grid.querySelectorAll(".session-card").forEach(watch);
          applyFilter();
        })
        .finally(function () { reloading = false; });
    }
    function catchUp() {
      fetch("/api/v1/sessions?limit=500", { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.json() : { items: [] }; })
        .then(function (page) { (page.items || []).forEach(update); })
        .catch(function () {});
    }
    function deleted(name) {
      const card = document.getElementById("session-" + name);
      if (!card) return;
      if (observer) observer.unobserve(card);
      screens.delete(card);
      onScreen.delete(card);
      card.remove();
      applyFilter();
    }
    follow(update, catchUp, deleted);
  }

  // ---- the full view ---------------------------------------------------------------------------------------------

  function startView(view) {
    const name = view.dataset.session;
    const img = document.getElementById("screen");
    const box = document.getElementById("screen-box");
    const screen = new Screen(img, box, document.getElementById("screen-note"));
    const gap = Number(view.dataset.frameMs) || 100;
    const rate = document.getElementById("frame-rate");
    const status = document.getElementById("action-status");
    let answers = [];
    let timer = null;

    // The next frame is asked for once the last one is shown: a slow link gets fewer frames, never a queue of them.
    function loop() {
      timer = null;
      if (!visible() || view.dataset.state !== "healthy") return;
      const started = performance.now();
      screen.load().then(function (result) {
        const now = performance.now();
        if (result === "new" || result === "same") answers.push(now);
        answers = answers.filter(function (at) { return now - at < 3000; });
        if (rate) rate.textContent = answers.length > 1 ? (answers.length / 3).toFixed(1) + " frames/s" : "";
        const wait = result === "error" ? 1000 : Math.max(0, gap - (now - started));
        timer = setTimeout(loop, wait);
      });
    }
    function resume() { if (timer === null && !screen.busy) loop(); }
    document.addEventListener("visibilitychange", function () { if (visible()) resume(); });
    resume();

    function update(session) {
      if (session.name !== name) return;
      const was = view.dataset.state;
      view.dataset.state = session.state;
      document.querySelectorAll("#session-state [data-field=state], [data-field=state-cell] [data-field=state]")
        .forEach(function (old) { old.replaceWith(badge(session.state, session.state_reason)); });
      const facts = document.getElementById("session-facts");
      facts.querySelector("[data-field=since]").textContent = "since " + time(session.state_since) + " UTC";
      facts.querySelector("[data-field=reason]").textContent = session.state_reason || "";
      facts.querySelector("[data-row=reason]").hidden = !session.state_reason;
      facts.querySelector("[data-field=display]").textContent = session.actual_display || session.display || "—";
      facts.querySelector("[data-field=restarts]").textContent = session.restarts;
      facts.querySelector("[data-field=last-healthy]").textContent = time(session.last_healthy_at);
      showConnection(facts.querySelector("[data-field=connection]"), session);
      if (session.state !== "healthy") screen.say(noScreen(session), screen.shown);
      else if (was !== "healthy") { screen.etag = null; resume(); }
      const events = document.getElementById("session-events");
      if (events && window.htmx) window.htmx.trigger(events, "refresh");
    }
    function catchUp() {
      fetch(API + encodeURIComponent(name), { credentials: "same-origin" })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (session) { if (session) update(session); })
        .catch(function () {});
    }
    follow(update, catchUp);

    // An rdp session's connection: connect, reconnect, disconnect, log off and Ctrl+Alt+Del, each a POST the API
    // checks and audits; the buttons follow what is wanted (connect) as the stream reports it.
    document.querySelectorAll("#rdp-controls [data-rdp]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        button.disabled = true;
        const path = button.dataset.rdp;
        send(path, path === "logoff" ? { wait_seconds: 30 } : null, button.dataset.done).finally(function () {
          if (path === "secure-attention") button.disabled = false;
          catchUp();  // the session as it is now sets the other buttons
        });
      });
    });
    const restart = document.getElementById("restart");
    if (restart) {
      restart.addEventListener("click", function () {
        if (!window.confirm(restart.dataset.confirm)) return;
        restart.disabled = true;
        send("restart", null, "Restart asked").finally(function () { restart.disabled = false; });
      });
    }
    // What the page sends, in order (a text then its Enter arrive as they were given).
    let sending = Promise.resolve();
    function send(path, body, done) {
      sending = sending.then(function () {
        return fetch(API + encodeURIComponent(name) + "/" + path, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRF-Token": view.dataset.csrf },
          body: body === null ? null : JSON.stringify(body),
        }).then(function (answer) {
          if (answer.ok) { status.textContent = done; resume(); return true; }
          return answer.json().catch(function () { return {}; }).then(function (reply) {
            status.textContent = "Refused: " + ((reply.error && reply.error.message) || answer.status + " " + answer.statusText);
            return false;
          });
        }).catch(function (error) { status.textContent = "Not sent: " + error.message; return false; });
      });
      return sending;
    }
    view.send = send;
    if (view.hasAttribute("data-control")) startControl(view, name, screen, status);
  }

  // What an rdp session's facts say of its connection, and which of its buttons apply (the same as
  // session_connection.html and session.html draw).
  function showConnection(cell, session) {
    if (!cell || session.kind !== "rdp") return;
    const parts = [session.connect ? "kept connected" : "disconnected on request"];
    const counts = session.connection;
    if (counts) {
      parts.push(counts.connects + (counts.connects === 1 ? " connect" : " connects"));
      parts.push(counts.drops + (counts.drops === 1 ? " drop" : " drops"));
    }
    cell.textContent = parts.join(" · ");
    if (counts && counts.last_exit) {
      const exit = document.createElement("span");
      exit.className = "muted small";
      exit.dataset.field = "last-exit";
      exit.textContent = "last exit: " + counts.last_exit;
      cell.append(document.createElement("br"), exit);
    }
    document.querySelectorAll("#rdp-controls [data-rdp]").forEach(function (button) {
      const path = button.dataset.rdp;
      if (path === "connect") button.disabled = session.connect && session.state !== "failed";
      else if (path !== "secure-attention") button.disabled = !session.connect;
    });
  }

  // ---- control ---------------------------------------------------------------------------------------------------

  // Browser key names → X keysyms (xdotool's names). A printable character without Ctrl/Alt/Super is typed.
  const KEYSYMS = {
    Enter: "Return", Escape: "Escape", Backspace: "BackSpace", Delete: "Delete", Insert: "Insert", Tab: "Tab",
    ArrowUp: "Up", ArrowDown: "Down", ArrowLeft: "Left", ArrowRight: "Right", Home: "Home", End: "End",
    PageUp: "Prior", PageDown: "Next", " ": "space", ContextMenu: "Menu", Pause: "Pause", PrintScreen: "Print",
  };
  const PUNCTUATION = {
    "-": "minus", "=": "equal", ",": "comma", ".": "period", "/": "slash", ";": "semicolon", "'": "apostrophe",
    "[": "bracketleft", "]": "bracketright", "\\": "backslash", "`": "grave",
  };
  const MODIFIERS = ["Control", "Alt", "Shift", "Meta", "AltGraph", "CapsLock", "NumLock"];

  function keysOf(event) {
    let key = KEYSYMS[event.key] || (/^F\d{1,2}$/.test(event.key) ? event.key : null);
    if (!key && event.key.length === 1) {
      key = /^[A-Za-z0-9]$/.test(event.key) ? event.key.toLowerCase() : PUNCTUATION[event.key] || null;
    }
    if (!key) return null;
    const held = [];
    if (event.ctrlKey) held.push("ctrl");
    if (event.altKey) held.push("alt");
    if (event.shiftKey && event.key.length !== 1) held.push("shift");
    if (event.metaKey) held.push("super");
    return held.concat([key]).join("+");
  }

  function startControl(view, name, screen, status) {
    const toggle = document.getElementById("control-toggle");
    const panel = document.getElementById("control-panel");
    const img = screen.img;
    const send = view.send;
    let on = false;

    function setControl(value) {
      on = value;
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      toggle.querySelector("[data-field=control]").textContent = on ? "on" : "off";
      panel.disabled = !on;
      img.classList.toggle("controlling", on);
      screen.box.classList.toggle("controlling", on);
      img.setAttribute("aria-label", on
        ? "Screen of session " + name + ", under control: clicks and keys go to the robot's display"
        : "Screen of session " + name);
      status.textContent = on ? "Control on: clicks and keys on the screen go to the robot." : "Control off.";
    }
    toggle.addEventListener("click", function () { setControl(!on); });
    document.addEventListener("keydown", function (event) {
      const target = event.target;
      const typing = target instanceof HTMLElement &&
        (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].indexOf(target.tagName) >= 0);
      if (event.key === "c" && !event.ctrlKey && !event.altKey && !event.metaKey && !typing &&
          !(on && target === img)) {
        event.preventDefault();
        setControl(!on);
      }
    });

    function refuse() {
      status.textContent = "Control is off: turn it on (the Control button, or c) to click on the robot's screen.";
    }
    function clickAt(event, button, double) {
      const point = screen.pointOf(event);
      if (!point) return;
      send("click", { x: point.x, y: point.y, button: button, double: double },
        (double ? "Double-clicked" : button === "left" ? "Clicked" : button[0].toUpperCase() + button.slice(1) + "-clicked") +
        " at " + point.x + ", " + point.y);
    }
    // A double click is two clicks with detail 1 then 2: the first waits a moment for a second, so that a double
    // click is sent once as such, not as two clicks and a double.
    let single = null;
    img.addEventListener("click", function (event) {
      if (!on) { refuse(); return; }
      event.preventDefault();
      img.focus({ preventScroll: true });
      if (event.detail >= 2) {
        if (single) { clearTimeout(single); single = null; }
        if (event.detail === 2) clickAt(event, "left", true);
        return;
      }
      const copy = { clientX: event.clientX, clientY: event.clientY };
      single = setTimeout(function () { single = null; clickAt(copy, "left", false); }, 250);
    });
    img.addEventListener("contextmenu", function (event) {
      if (!on) return;  // off: the browser's own menu (save the image…)
      event.preventDefault();
      clickAt(event, "right", false);
    });
    img.addEventListener("auxclick", function (event) {
      if (!on || event.button !== 1) return;
      event.preventDefault();
      clickAt(event, "middle", false);
    });
    img.addEventListener("mousedown", function (event) { if (on && event.button === 1) event.preventDefault(); });

    // The wheel: its steps gathered for a moment and sent as scroll clicks (+ down, - up) where the pointer is.
    let wheel = 0, wheelAt = null, wheelTimer = null;
    img.addEventListener("wheel", function (event) {
      if (!on) return;
      event.preventDefault();
      const lines = event.deltaMode === 1 ? event.deltaY / 3 : event.deltaMode === 2 ? event.deltaY * 10 : event.deltaY / 100;
      wheel += lines;
      wheelAt = { clientX: event.clientX, clientY: event.clientY };
      if (wheelTimer) return;
      wheelTimer = setTimeout(function () {
        wheelTimer = null;
        const amount = wheel > 0 ? Math.max(1, Math.round(wheel)) : Math.min(-1, Math.round(wheel));
        wheel = 0;
        const point = screen.pointOf(wheelAt);
        if (!point) return;
        send("scroll", { x: point.x, y: point.y, amount: amount },
          "Scrolled " + Math.abs(amount) + (amount > 0 ? " down" : " up") + " at " + point.x + ", " + point.y);
      }, 120);
    }, { passive: false });

    // Keys while the screen has the focus: characters are gathered and typed, the others pressed. Tab leaves the
    // screen as everywhere else (the Tab button sends one).
    let text = "", textTimer = null;
    function flushText() {
      textTimer = null;
      if (!text) return;
      const typed = text;
      text = "";
      send("type", { text: typed }, "Typed " + typed.length + " character(s)");
    }
    img.addEventListener("keydown", function (event) {
      if (!on || event.key === "Tab" && !event.ctrlKey && !event.altKey) return;
      if (MODIFIERS.indexOf(event.key) >= 0) return;
      event.preventDefault();
      event.stopPropagation();  // not the panel's shortcuts (g, /, n, ?) nor the Control key c
      if (event.key.length === 1 && !event.ctrlKey && !event.altKey && !event.metaKey) {
        text += event.key;
        if (!textTimer) textTimer = setTimeout(flushText, 150);
        return;
      }
      const keys = keysOf(event);
      if (!keys) { status.textContent = "That key has no name on the robot's side: use the key field."; return; }
      if (textTimer) { clearTimeout(textTimer); flushText(); }
      send("key", { keys: keys }, "Pressed " + keys);
    });

    document.getElementById("type-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const box = document.getElementById("type-text");
      if (!box.value) return;
      const typed = box.value;
      send("type", { text: typed }, "Typed " + typed.length + " character(s)").then(function (done) {
        if (done) box.value = "";
      });
    });
    document.getElementById("key-form").addEventListener("submit", function (event) {
      event.preventDefault();
      const box = document.getElementById("key-combo");
      const keys = box.value.trim().replace(/\s*\+\s*/g, "+");
      if (keys) send("key", { keys: keys }, "Pressed " + keys);
    });
    panel.querySelectorAll("button[data-keys]").forEach(function (button) {
      button.addEventListener("click", function () {
        send("key", { keys: button.dataset.keys }, "Pressed " + button.dataset.keys);
      });
    });
  }

  // ---- a run's evidence ------------------------------------------------------------------------------------------

  // The agent sends a failed run's evidence a moment after the end: the section asks again (htmx "refresh") while
  // the server marks it as waiting, and whenever the run's facts were refreshed (its state changed).
  function startEvidence() {
    let asked = 0;
    function ask() {
      const section = document.getElementById("run-evidence");
      if (section && window.htmx) window.htmx.trigger(section, "refresh");
    }
    setInterval(function () {
      const section = document.getElementById("run-evidence");
      if (section && section.hasAttribute("data-waiting") && asked++ < 40) ask();
    }, 3000);
    document.body.addEventListener("htmx:afterSwap", function (event) {
      const target = event.detail && event.detail.target;
      if (target && target.id === "run-summary") ask();
    });
  }

  function start() {
    const grid = document.getElementById("sessions");
    if (grid) startGrid(grid);
    const view = document.getElementById("session-view");
    if (view) startView(view);
    if (document.getElementById("run-evidence")) startEvidence();
    // A refresh answered by the login page (the session ended): show that page, not a table of it.
    document.body.addEventListener("htmx:beforeSwap", function (event) {
      const answered = event.detail.xhr && event.detail.xhr.responseURL;
      if (answered && answered.indexOf("/panel/login") >= 0) { event.detail.shouldSwap = false; window.location.reload(); }
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
