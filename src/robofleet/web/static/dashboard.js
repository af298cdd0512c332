// The dashboard, live: its figures are fetched again (htmx, ?part=figures) when a run changes (the runs stream),
// at most every REFRESH_MIN_MS, and every REFRESH_MS while the page is visible (durations grow, hours pass).
(function () {
  "use strict";
  const REFRESH_MS = 30000;
  const REFRESH_MIN_MS = 2000;
  const live = document.getElementById("live-state");
  let last = 0;
  let pending = null;

  function refresh() {
    const figures = document.getElementById("dashboard-figures");
    if (!figures || !window.htmx) return;
    const wait = last + REFRESH_MIN_MS - Date.now();
    if (wait > 0) {
      if (!pending) pending = setTimeout(function () { pending = null; refresh(); }, wait);
      return;
    }
    last = Date.now();
    window.htmx.trigger(figures, "refresh");
  }

  const runs = new EventSource("/api/v1/runs-stream");
  runs.addEventListener("open", function () {
    if (live) { live.textContent = "live"; live.className = "badge ok"; }
    refresh();  // whatever changed between the page being rendered and the stream opening
  });
  runs.addEventListener("error", function () {
    if (live) { live.textContent = "reconnecting…"; live.className = "badge warn"; }
  });
  runs.addEventListener("run", refresh);
  setInterval(function () { if (document.visibilityState === "visible") refresh(); }, REFRESH_MS);
})();
