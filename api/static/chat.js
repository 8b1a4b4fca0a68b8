// Web chat: new messages appear without a reload; sending stays on the page.
// Without JavaScript the form posts and the page reloads, which works too.
(function () {
  "use strict";

  function start() {
    var list = document.getElementById("messages");
    var form = document.getElementById("composer");
    if (!list || !form) { return; }
    var pollUrl = list.getAttribute("data-poll");
    var every = Math.max(2, parseInt(list.getAttribute("data-every"), 10) || 4) * 1000;
    var errorBox = document.getElementById("body-error");
    var box = document.getElementById("body");
    var button = form.querySelector("button[type=submit]");
    var shown = "";
    var timer = null;

    function item(message) {
      var li = document.createElement("li");
      li.className = "message " + message.direction;
      li.setAttribute("data-id", message.id);
      var meta = document.createElement("p");
      meta.className = "meta";
      var who = document.createElement("span");
      who.className = "who";
      who.textContent = message.who;
      var when = document.createElement("time");
      when.setAttribute("datetime", message.at);
      when.textContent = message.at_label;
      meta.appendChild(who);
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(when);
      var text = document.createElement("p");
      text.className = "text";
      text.textContent = message.text;
      li.appendChild(meta);
      li.appendChild(text);
      return li;
    }

    function render(messages) {
      var ids = messages.map(function (m) { return m.id; }).join(",");
      if (ids === shown) { return; }
      var known = {};
      Array.prototype.forEach.call(list.querySelectorAll("li[data-id]"), function (li) {
        known[li.getAttribute("data-id")] = true;
      });
      var empty = list.querySelector("li.empty");
      if (empty && messages.length) { list.removeChild(empty); }
      messages.forEach(function (m) {
        if (!known[m.id]) { list.appendChild(item(m)); }
      });
      shown = ids;
      var last = list.lastElementChild;
      if (last && last.scrollIntoView) { last.scrollIntoView({block: "nearest"}); }
    }

    function poll() {
      return fetch(pollUrl, {headers: {"Accept": "application/json"}, credentials: "same-origin", cache: "no-store"})
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) { if (data && data.messages) { render(data.messages); } })
        .catch(function () { /* offline for a moment: the next poll tries again */ });
    }

    function schedule() {
      clearTimeout(timer);
      timer = setTimeout(function () {
        if (document.visibilityState === "hidden") { schedule(); return; }
        poll().then(schedule);
      }, every);
    }

    function showError(text) {
      errorBox.textContent = text;
      errorBox.hidden = !text;
      if (text) { box.setAttribute("aria-invalid", "true"); } else { box.removeAttribute("aria-invalid"); }
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var body = new URLSearchParams(new FormData(form));
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: {"Accept": "application/json"}
      }).then(function (r) {
        return r.json().then(function (data) { return {ok: r.ok, data: data}; }, function () {
          return {ok: false, data: {}};
        });
      }).then(function (answer) {
        if (!answer.ok) { showError(answer.data.error || errorBox.getAttribute("data-failed")); return; }
        showError("");
        box.value = "";
        return poll();
      }).catch(function () {
        showError(errorBox.getAttribute("data-failed"));
      }).then(function () {
        button.disabled = false;
        box.focus();
      });
    });

    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible") { poll(); }
    });
    shown = Array.prototype.map.call(list.querySelectorAll("li[data-id]"), function (li) {
      return li.getAttribute("data-id");
    }).join(",");
    schedule();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
