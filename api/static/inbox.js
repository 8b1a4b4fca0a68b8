// The inbox: new messages and status changes appear without a reload (Server-Sent
// Events from /inbox/events, or a poll where they cannot pass), the timers count,
// and the page title carries the number of conversations waiting for a reply.
(function () {
  "use strict";

  var POLL_EVERY = 5000;

  function minutes(seconds) {
    var m = Math.max(0, Math.floor(seconds / 60));
    if (m < 120) { return m + " min"; }
    var h = Math.floor(m / 60);
    return h < 48 ? h + " h" : Math.floor(h / 24) + " d";
  }

  // Each timer counts from the guest's first unanswered message; red past the hotel's target.
  function tick() {
    var now = Date.now();
    Array.prototype.forEach.call(document.querySelectorAll(".timer[data-since]"), function (timer) {
      var waited = (now - Date.parse(timer.getAttribute("data-since"))) / 1000;
      var late = waited > parseInt(timer.getAttribute("data-target"), 10);
      var elapsed = timer.querySelector(".elapsed");
      if (elapsed) { elapsed.textContent = minutes(waited); }
      timer.classList.toggle("late", late);
      var row = timer.closest(".conversation");
      if (row) { row.classList.toggle("late", late); }
    });
  }

  function retitle(live) {
    var count = live.getAttribute("data-unanswered");
    var base = live.getAttribute("data-title");
    if (base === null) { return; }
    document.title = (count && count !== "0" ? "(" + count + ") " : "") + base;
  }

  function start() {
    var live = document.querySelector("[data-live]");
    if (!live) { return; }
    var id = live.id;
    var loading = false;
    var again = false;

    function refresh(version) {
      var current = document.getElementById(id);
      if (!current || (version && current.getAttribute("data-version") === version)) { return; }
      if (loading) { again = true; return; }
      loading = true;
      fetch(current.getAttribute("data-refresh"), {headers: {"Accept": "text/html"}, credentials: "same-origin", cache: "no-store"})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById(id);
          var now = document.getElementById(id);
          if (fresh && now) {
            now.replaceWith(document.importNode(fresh, true));
            retitle(document.getElementById(id));
            tick();
          }
        })
        .catch(function () { return null; })
        .then(function () {
          loading = false;
          if (again) { again = false; refresh(null); }
        });
    }

    var polling = null;
    function poll() {
      if (polling === null) { polling = setInterval(function () { refresh(null); }, POLL_EVERY); }
    }

    if (window.EventSource) {
      var source = new EventSource(live.getAttribute("data-live"));
      var failures = 0;
      source.addEventListener("change", function (event) { failures = 0; refresh(event.data); });
      source.addEventListener("error", function () {
        failures += 1;
        if (failures >= 3) { source.close(); poll(); }
      });
    } else {
      poll();
    }
    retitle(live);
    tick();
    setInterval(tick, 5000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
