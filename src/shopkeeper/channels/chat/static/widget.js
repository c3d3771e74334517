/*
 * Shopkeeper web chat widget. Plain JavaScript, no build step, no dependencies.
 *
 *   <script src="https://shopkeeper.example/chat/widget.js" async
 *           data-write-key="wk_..."                   (required: the workspace's write key)
 *           data-user-id="42" data-user-token="..."   (optional: a signed-in user, see docs/web-chat.md)
 *           data-title="Chat with us" data-color="#2563eb" data-open="false"></script>
 *
 * Without a user id the visitor is anonymous: a random id kept in localStorage. The widget
 * reconnects with exponential backoff, shows the history the server replays, keeps unsent
 * messages until the server has stored them (each has a client id, so a retry is stored once),
 * and reports which messages it showed (delivered) and which the visitor saw (read).
 * window.ShopkeeperChat offers open(), close(), send(text) and shutdown() (on sign-out).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.ShopkeeperChat) { return; }
  var cfg = {
    writeKey: script.getAttribute("data-write-key") || "",
    userId: script.getAttribute("data-user-id") || "",
    userToken: script.getAttribute("data-user-token") || "",
    title: script.getAttribute("data-title") || "Chat with us",
    color: script.getAttribute("data-color") || "#2563eb",
    open: script.getAttribute("data-open") === "true"
  };
  var base = new URL(script.src, document.baseURI);
  var socketUrl = (base.protocol === "https:" ? "wss://" : "ws://") + base.host + "/chat/ws";
  var ANON_KEY = "shopkeeper_chat_anonymous_id";

  function randomId(prefix) {
    if (window.crypto && window.crypto.randomUUID) { return prefix + window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return prefix + Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function storage(name, value) {
    try {
      if (value === undefined) { return window.localStorage.getItem(name); }
      if (value === null) { window.localStorage.removeItem(name); } else { window.localStorage.setItem(name, value); }
    } catch (e) { /* private mode: the id lives as long as the page */ }
    return null;
  }
  var memoryAnonymous = null;
  function anonymousId(reset) {
    var id = reset ? null : (storage(ANON_KEY) || memoryAnonymous);
    if (!id) { id = randomId("anon-"); storage(ANON_KEY, id); }
    memoryAnonymous = id;
    return id;
  }

  // -- the view (in a shadow root, so the page's CSS and ours never meet) ------------------------
  var host = document.createElement("div");
  host.id = "shopkeeper-chat";
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    ".sk-launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;" +
    "background:" + cfg.color + ";color:#fff;font:600 24px/56px system-ui,sans-serif;cursor:pointer;" +
    "box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000}" +
    ".sk-badge{position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;border-radius:10px;background:#dc2626;" +
    "color:#fff;font:600 12px/20px system-ui,sans-serif;text-align:center;display:none}" +
    ".sk-panel{position:fixed;right:20px;bottom:88px;width:340px;max-width:calc(100vw - 40px);height:460px;" +
    "max-height:calc(100vh - 120px);background:#fff;border-radius:12px;box-shadow:0 8px 30px rgba(0,0,0,.3);" +
    "display:none;flex-direction:column;overflow:hidden;font:14px/1.4 system-ui,sans-serif;color:#111;z-index:2147483000}" +
    ".sk-panel.sk-open{display:flex}" +
    ".sk-head{background:" + cfg.color + ";color:#fff;padding:12px 14px;font-weight:600;display:flex;justify-content:space-between}" +
    ".sk-status{font-weight:400;font-size:12px;opacity:.9}" +
    ".sk-log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:6px;background:#f8fafc}" +
    ".sk-msg{max-width:80%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;word-wrap:break-word}" +
    ".sk-in{align-self:flex-end;background:" + cfg.color + ";color:#fff}" +
    ".sk-out{align-self:flex-start;background:#e5e7eb}" +
    ".sk-pending{opacity:.6}" +
    ".sk-form{display:flex;border-top:1px solid #e5e7eb}" +
    ".sk-input{flex:1;border:0;padding:12px;font:inherit;outline:none;resize:none}" +
    ".sk-send{border:0;background:none;color:" + cfg.color + ";font:600 14px system-ui,sans-serif;padding:0 14px;cursor:pointer}" +
    ".sk-error{color:#b91c1c;font-size:12px;padding:4px 12px}" +
    "</style>" +
    "<button class='sk-launcher' type='button' aria-label='Open chat'>&#128172;<span class='sk-badge'></span></button>" +
    "<section class='sk-panel' role='dialog' aria-label='Chat'>" +
    "<div class='sk-head'><span class='sk-title'></span><span class='sk-status'>connecting…</span></div>" +
    "<div class='sk-log' aria-live='polite'></div>" +
    "<div class='sk-error' hidden></div>" +
    "<form class='sk-form'><textarea class='sk-input' rows='1' placeholder='Write a message…' aria-label='Message'></textarea>" +
    "<button class='sk-send' type='submit'>Send</button></form>" +
    "</section>";
  var $ = function (sel) { return root.querySelector(sel); };
  var launcher = $(".sk-launcher"), badge = $(".sk-badge"), panel = $(".sk-panel"), log = $(".sk-log");
  var statusEl = $(".sk-status"), errorEl = $(".sk-error"), form = $(".sk-form"), input = $(".sk-input");
  $(".sk-title").textContent = cfg.title;

  // -- state -------------------------------------------------------------------------------------
  var shown = {};          // interaction id → element
  var pending = [];        // {client_id, text, el}: not yet stored by the server
  var unreadIds = [];      // outbound ids shown while the panel was closed
  var socket = null, ready = false, attempts = 0, timer = null, stopped = false, resetAnonymous = false;

  function setStatus(text) { statusEl.textContent = text; }
  function showError(text) { errorEl.textContent = text; errorEl.hidden = !text; }
  function isOpen() { return panel.classList.contains("sk-open"); }
  function updateBadge() {
    badge.textContent = String(unreadIds.length);
    badge.style.display = unreadIds.length && !isOpen() ? "block" : "none";
  }
  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function bubble(direction, text, pendingClass) {
    var el = document.createElement("div");
    // "in" is what the visitor sent (inbound to the company), "out" what the company sent.
    el.className = "sk-msg " + (direction === "in" ? "sk-in" : "sk-out") + (pendingClass ? " sk-pending" : "");
    el.textContent = text;
    log.appendChild(el);
    scrollDown();
    return el;
  }

  function show(message, fromHistory) {
    if (!message || !message.id || shown[message.id]) { return; }
    var el = bubble(message.direction, message.text, false);
    el.setAttribute("data-id", message.id);
    el.setAttribute("data-direction", message.direction);
    shown[message.id] = el;
    if (message.direction === "out") {
      var status = fromHistory ? message.status : "sent";
      if (status === "queued" || status === "sent") { transmit({ type: "delivered", ids: [message.id] }); }
      if (status === "opened" || status === "clicked" || status === "replied") { return; }
      if (isOpen() && document.visibilityState !== "hidden") {
        transmit({ type: "read", ids: [message.id] });
      } else {
        unreadIds.push(message.id);
        updateBadge();
      }
    }
  }

  function transmit(frame) {
    if (socket && ready && socket.readyState === 1) { socket.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function flushPending() {
    pending.forEach(function (p) {
      transmit({ type: "message", text: p.text, client_id: p.client_id, page_url: window.location.href });
    });
  }

  // -- the connection ----------------------------------------------------------------------------
  function connect() {
    if (stopped) { return; }
    clearTimeout(timer);
    ready = false;
    setStatus("connecting…");
    var hello = { type: "hello", write_key: cfg.writeKey };
    if (cfg.userId) { hello.user_id = cfg.userId; hello.user_token = cfg.userToken; }
    var anon = anonymousId(resetAnonymous);
    resetAnonymous = false;
    if (anon) { hello.anonymous_id = anon; }
    var ws = new WebSocket(socketUrl);
    socket = ws;
    ws.onopen = function () { ws.send(JSON.stringify(hello)); };
    ws.onmessage = function (event) {
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.type === "ready") {
        ready = true;
        attempts = 0;
        setStatus("online");
        showError("");
        (frame.history || []).forEach(function (m) { show(m, true); });
        flushPending();
      } else if (frame.type === "message") {
        show(frame.message, false);
      } else if (frame.type === "stored") {
        pending = pending.filter(function (p) {
          if (p.client_id !== frame.client_id) { return true; }
          p.el.classList.remove("sk-pending");
          p.el.setAttribute("data-id", frame.message.id);
          p.el.setAttribute("data-direction", "in");
          shown[frame.message.id] = p.el;
          return false;
        });
        show(frame.message, false);
      } else if (frame.type === "error") {
        showError(frame.message || "error");
      }
    };
    ws.onclose = function (event) {
      if (socket !== ws) { return; }
      ready = false;
      socket = null;
      if (event.code === 4403 && !cfg.userId) {
        // This browser's anonymous id belongs to a visitor who signed in: start a new one.
        resetAnonymous = true;
        attempts = 0;
        timer = setTimeout(connect, 50);
        return;
      }
      if (event.code === 4400 || event.code === 4401 || event.code === 4403) {
        stopped = true;
        setStatus("offline");
        showError("Chat unavailable: " + (event.reason || "refused"));
        return;
      }
      attempts += 1;
      var delay = Math.min(30000, 500 * Math.pow(2, attempts - 1)) * (0.5 + Math.random() / 2);
      setStatus("reconnecting…");
      timer = setTimeout(connect, delay);
    };
  }

  function send(text) {
    text = String(text || "").trim();
    if (!text) { return; }
    var item = { client_id: randomId("c-"), text: text, el: bubble("in", text, true) };
    pending.push(item);
    transmit({ type: "message", text: text, client_id: item.client_id, page_url: window.location.href });
  }

  function open() {
    panel.classList.add("sk-open");
    if (unreadIds.length) { transmit({ type: "read", ids: unreadIds.slice() }); unreadIds = []; }
    updateBadge();
    scrollDown();
    input.focus();
  }
  function close() { panel.classList.remove("sk-open"); updateBadge(); }

  launcher.addEventListener("click", function () { if (isOpen()) { close(); } else { open(); } });
  form.addEventListener("submit", function (event) { event.preventDefault(); send(input.value); input.value = ""; });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); send(input.value); input.value = ""; }
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && isOpen() && unreadIds.length) {
      transmit({ type: "read", ids: unreadIds.slice() });
      unreadIds = [];
      updateBadge();
    }
  });
  setInterval(function () { transmit({ type: "ping" }); }, 25000);

  window.ShopkeeperChat = {
    open: open,
    close: close,
    send: send,
    shutdown: function () {
      // On sign-out: forget this browser's anonymous id and start a fresh anonymous visitor.
      storage(ANON_KEY, null);
      memoryAnonymous = null;
      cfg.userId = "";
      cfg.userToken = "";
      log.innerHTML = "";
      shown = {};
      unreadIds = [];
      updateBadge();
      if (socket) { var s = socket; socket = null; s.close(); }
      attempts = 0;
      stopped = false;
      connect();
    }
  };

  function mount() {
    document.body.appendChild(host);
    if (cfg.open) { open(); }
    connect();
  }
  if (document.body) { mount(); } else { document.addEventListener("DOMContentLoaded", mount); }
})();
