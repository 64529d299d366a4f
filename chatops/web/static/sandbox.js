// Live updates for /sandbox: long-poll the sandbox event log and re-fetch the open
// chat's server-rendered messages when they change. The page works without this.
(function () {
  "use strict";
  var body = document.body;
  var chat = body.dataset.chat;
  var lang = body.dataset.lang;
  var qid = body.dataset.qid;
  var after = parseInt(body.dataset.after, 10) || 0;
  var list = document.getElementById("messages");
  var scroller = document.getElementById("scroller");
  var toast = document.getElementById("toast");

  function toBottom() { scroller.scrollTop = scroller.scrollHeight; }

  function showToast(text) {
    toast.textContent = text;
    toast.hidden = false;
  }

  function reload() {
    var url = "/sandbox/messages?chat=" + encodeURIComponent(chat) + "&lang=" + encodeURIComponent(lang);
    return fetch(url, { cache: "no-store" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var stick = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40;
        list.innerHTML = html;
        body.dataset.version = String(after);
        if (stick) { toBottom(); }
      });
  }

  function poll() {
    fetch("/sandbox/api/events?after=" + after + "&timeout=20", { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (page) {
        var changed = false;
        (page.events || []).forEach(function (e) {
          if (String(e.chat_id) === chat && (e.type === "message" || e.type === "edit" || e.type === "delete")) {
            changed = true;
          }
          if (e.type === "callback_answer" && e.answer && e.answer.callback_query_id === qid && e.answer.text) {
            showToast(e.answer.text);
          }
        });
        after = page.last;
        return changed ? reload() : null;
      })
      .then(poll, function () { setTimeout(poll, 2000); });
  }

  toBottom();
  poll();
})();
