// Task instance page: while the try runs, fetch what the log gained since the last look.
(function () {
  "use strict";
  var pre = document.getElementById("log");
  if (!pre || pre.dataset.follow !== "true") { return; }
  var offset = parseInt(pre.dataset.offset || "0", 10);
  var url = pre.dataset.url;
  var delay = 2000;

  function poll() {
    fetch(url + "?offset=" + offset, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        if (data.content) {
          var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
          // textContent: a log line is text, never markup
          pre.appendChild(document.createTextNode(data.content));
          if (atBottom) { pre.scrollTop = pre.scrollHeight; }
        }
        offset = data.next_offset;
        var state = document.getElementById("ti-state");
        if (state && data.state !== undefined) { state.dataset.state = data.state || ""; }
        if (data.finished) {
          // the try ended: reload once so the state and attributes are current
          window.location.reload();
          return;
        }
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, delay * 2); });
  }
  window.setTimeout(poll, delay);
})();
