// Keyboard shortcuts of the panel: "g <key>" goes to a section, "/" focuses a filter, "n" a new-item form,
// "?" shows the list. Written by hand: a dozen lines do not justify a library.
(function () {
  "use strict";
  let pendingG = false;
  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const help = document.getElementById("keys");
    if (pendingG) {
      pendingG = false;
      const link = document.querySelector('.sidebar a[data-shortcut="' + event.key + '"]');
      if (link) { event.preventDefault(); window.location.assign(link.getAttribute("href")); }
      return;
    }
    if (event.key === "g") { pendingG = true; setTimeout(function () { pendingG = false; }, 1500); return; }
    if (event.key === "/") {
      const box = document.querySelector("[data-filter] input, input[type=search]");
      if (box) { event.preventDefault(); box.focus(); }
    } else if (event.key === "n") {
      const form = document.querySelector("form[data-new]");
      const field = form && form.querySelector("input:not([type=hidden]), select, textarea");
      if (field) {
        event.preventDefault();
        const folded = form.closest("details");  // a long form waits folded until asked for
        if (folded) folded.open = true;
        field.focus();
      }
    } else if (event.key === "?" && help) {
      help.open ? help.close() : help.showModal();
    }
  });
})();

// Destructive forms ask first; a data attribute instead of inline handlers keeps the CSP strict.
document.addEventListener("submit", function (event) {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
}, true);

// The sidebar folds into a "Menu" button on a narrow screen (panel.css decides when the button shows). The button
// says whether the menu is open (aria-expanded); Escape inside the menu closes it and gives the focus back.
(function () {
  "use strict";
  const toggle = document.getElementById("menu-toggle");
  const sidebar = document.getElementById("sidebar");
  if (!toggle || !sidebar) return;
  function show(open) {
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    sidebar.classList.toggle("open", open);
  }
  toggle.addEventListener("click", function () {
    show(toggle.getAttribute("aria-expanded") !== "true");
  });
  sidebar.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
      show(false);
      toggle.focus();
    }
  });
})();

