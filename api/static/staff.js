// Staff pages: small enhancements; every page works without JavaScript.
(function () {
  "use strict";

  // A form is sent once: its button is disabled while the page loads the answer.
  function sendOnce(form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit]"), function (button) {
        setTimeout(function () { button.disabled = true; }, 0);
      });
    });
  }

  // The send form shows the offer field only for offer templates, the text only for a free text.
  function followTemplate(form) {
    var select = form.querySelector("select[name=template]");
    if (!select) { return; }
    var channel = form.querySelector("select[name=channel]");
    function update() {
      var chosen = select.value;
      Array.prototype.forEach.call(form.querySelectorAll("[data-for]"), function (field) {
        field.hidden = field.getAttribute("data-for").split(" ").indexOf(chosen) < 0;
      });
      var option = select.options[select.selectedIndex];
      var channels = option ? (option.getAttribute("data-channels") || "").split(" ") : [];
      if (channel) {
        Array.prototype.forEach.call(channel.options, function (item) {
          item.disabled = item.value !== "" && channels.indexOf(item.value) < 0;
        });
        if (channel.selectedOptions.length && channel.selectedOptions[0].disabled) { channel.value = ""; }
      }
    }
    select.addEventListener("change", update);
    update();
  }

  // While a message is queued, the timeline refreshes itself until every message has a status.
  function refreshTimeline() {
    var body = document.getElementById("timeline-body");
    if (!body || body.getAttribute("data-pending") !== "true") { return; }
    var url = body.getAttribute("data-refresh");
    var tries = 0;
    function poll() {
      tries += 1;
      fetch(url, {headers: {"Accept": "text/html"}, credentials: "same-origin", cache: "no-store"})
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (!html) { return; }
          var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("timeline-body");
          var current = document.getElementById("timeline-body");
          if (!fresh || !current) { return; }
          current.replaceWith(document.importNode(fresh, true));
          Array.prototype.forEach.call(document.querySelectorAll("#timeline-body form[data-once]"), sendOnce);
          if (fresh.getAttribute("data-pending") === "true" && tries < 40) { setTimeout(poll, 3000); }
        })
        .catch(function () { if (tries < 40) { setTimeout(poll, 5000); } });
    }
    setTimeout(poll, 2000);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll("form[data-once]"), sendOnce);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-template-form]"), followTemplate);
    refreshTimeline();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
