// Small conveniences shared by pages: a run picker submits itself when changed.
(function () {
  "use strict";
  document.querySelectorAll("select.autosubmit").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });
})();
