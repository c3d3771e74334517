// The inbox, live: one EventSource on /inbox/stream for the page. Every conversation event asks
// htmx to fetch again the parts of the page that show it ([data-live] elements: the list, or the
// open thread when the event is its own). The browser resumes a dropped stream with
// Last-Event-ID; if it gives up (the server refused), we reconnect after the last id we saw.
// Also: a refused action's message is shown beside its form (htmx leaves 4xx unswapped), and the
// thread stays scrolled to its newest message.
(function () {
  "use strict";

  function scrollThread() {
    var log = document.getElementById("thread-log");
    if (log) { log.scrollTop = log.scrollHeight; }
  }

  function connect(status) {
    var base = status.dataset.inboxStream;
    var lastId = status.dataset.after || "";
    var wait = 1000;
    var source = null;

    function say(state, text) {
      status.dataset.state = state;
      status.textContent = text;
    }

    function open() {
      var url = base + (lastId ? (base.indexOf("?") < 0 ? "?" : "&") + "after=" + encodeURIComponent(lastId) : "");
      source = new EventSource(url);
      source.onopen = function () {
        wait = 1000;
        say("live", "Live");
      };
      source.onmessage = function (message) {
        if (message.lastEventId) { lastId = message.lastEventId; }
        var event;
        try { event = JSON.parse(message.data); } catch (e) { return; }
        document.querySelectorAll("[data-live]").forEach(function (element) {
          var only = element.dataset.liveConversation;
          if (!only || only === event.conversation_id) {
            window.htmx.trigger(element, "inbox-changed", { kind: event.kind, seq: event.seq });
          }
        });
        if (event.kind === "message") { say("live", "Live · new message " + new Date().toLocaleTimeString()); }
      };
      source.onerror = function () {
        if (source.readyState === EventSource.CLOSED) {
          say("reconnecting", "Reconnecting…");
          window.setTimeout(open, wait);
          wait = Math.min(wait * 2, 30000);
        } else {
          say("reconnecting", "Reconnecting…");  // the browser retries by itself, with Last-Event-ID
        }
      };
    }

    open();
    window.addEventListener("pagehide", function () { if (source) { source.close(); } });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var status = document.querySelector("[data-inbox-stream]");
    if (status && window.EventSource && window.htmx) { connect(status); }
    scrollThread();
  });

  // A refusal names where its message goes (HX-Retarget): let htmx put it there.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("HX-Retarget")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Anything else that failed (a lost session, a server error): say so at the top of the page.
  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.getResponseHeader("HX-Retarget")) { return; }
    var notice = document.getElementById("inbox-notice");
    if (!notice) { return; }
    var text = (xhr.getResponseHeader("Content-Type") || "").indexOf("text/html") === 0 && xhr.responseText.length < 300
      ? xhr.responseText : "That did not work (HTTP " + xhr.status + "): reload the page and try again.";
    notice.className = "inbox-notice notice error";
    notice.textContent = text;
  });

  document.addEventListener("htmx:afterSettle", scrollThread);
})();
