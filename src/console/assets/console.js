// airlog console: live rows, the now panel's refresh and countdown, the station switcher.
// Everything works without it except the live parts.
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var body = document.body;

  // The station switcher goes as soon as a station is picked.
  var select = document.getElementById("station");
  if (select && select.form) {
    select.addEventListener("change", function () { select.form.submit(); });
  }

  // Remaining time of what is on air, counted down between refreshes of the panel.
  function fmt(s) {
    s = Math.max(0, Math.round(s));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(r).padStart(2, "0");
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll(".remaining[data-ends-at]").forEach(function (el) {
      el.textContent = "\u2212" + fmt((Number(el.dataset.endsAt) - now) / 1000);
    });
    document.querySelectorAll("progress[data-ends-at]").forEach(function (el) {
      var len = Number(el.dataset.length);
      el.value = Math.min(len, Math.max(0, len - (Number(el.dataset.endsAt) - now) / 1000));
    });
  }
  setInterval(tick, 1000);

  var station = body.dataset.station;
  var after = body.dataset.liveAfter;
  if (!station || after === undefined || !window.EventSource) return;

  var base = "/console/stations/" + encodeURIComponent(station);
  var table = document.querySelector("table#log[data-live='1']");
  var indicator = document.querySelectorAll("[data-testid='live']");
  function status(on) {
    indicator.forEach(function (el) {
      el.classList.toggle("on", on);
      el.textContent = on ? "live" : "reconnecting";
    });
  }

  function wanted(kind) {
    var filter = table.dataset.kind;
    return filter === "all" || filter === kind;
  }

  function insert(entry) {
    if (!table) return;
    var tbody = table.tBodies[0];
    if (tbody.querySelector("tr[data-entry-id='" + entry.id + "']")) return;
    var holder = document.createElement("tbody");
    holder.innerHTML = entry.html;
    var row = holder.firstElementChild;
    if (!row || !wanted(row.dataset.kind)) return;
    row.classList.add("new");
    tbody.insertBefore(row, tbody.firstElementChild);
    setTimeout(function () { row.classList.remove("new"); }, 4000);
    var empty = document.querySelector("[data-testid='log-empty']");
    if (empty) empty.remove();
  }

  var refreshing = false;
  function refreshNow() {
    var panel = document.querySelector("[data-testid='now']");
    if (!panel || refreshing) return;
    refreshing = true;
    fetch(base + "/now", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html) { panel.outerHTML = html; tick(); }
      })
      .finally(function () { refreshing = false; });
  }

  var source = new EventSource(base + "/events?after=" + encodeURIComponent(after));
  source.addEventListener("open", function () { status(true); });
  source.addEventListener("error", function () { status(false); });
  source.addEventListener("entry", function (e) {
    insert(JSON.parse(e.data));
    refreshNow();
  });
  // The panel's "next" and remaining time change without new entries too.
  setInterval(refreshNow, 30000);
})();
