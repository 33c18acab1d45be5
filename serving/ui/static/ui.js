// churnlens CSM page: the filter menus apply as soon as one changes (the Apply button works
// without JavaScript too). Nothing else runs here: the page is rendered by the server.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("filters");
  if (!form) {
    return;
  }
  form.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () {
      form.submit();
    });
  });
});
