// Reveal one chip's value on demand, then wipe it after the page's reveal timeout.
// The value only ever goes into textContent (never HTML) and is not stored anywhere.
"use strict";
(function () {
  var list = document.getElementById("transcript");
  if (!list) { return; }
  var seconds = parseInt(list.getAttribute("data-reveal-seconds"), 10) || 8;
  // The buttons are type="button": without this script nothing is posted, so a value can
  // never land on a page that would not remove it again.
  list.addEventListener("click", function (event) {
    var button = event.target;
    if (button.tagName !== "BUTTON") { return; }
    var form = button.closest("form.reveal");
    if (!form) { return; }
    event.preventDefault();
    var out = form.parentNode.querySelector(".revealed");
    var data = new FormData(form);
    var purpose = document.getElementById("purpose");
    if (purpose) { data.append("purpose", purpose.value); }
    out.classList.remove("refused");
    out.textContent = "…";
    fetch(form.action, { method: "POST", body: data, credentials: "same-origin" })
      .then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, status: resp.status, body: body }; });
      })
      .then(function (res) {
        if (res.ok) {
          out.textContent = res.body.value;
          out.setAttribute("data-state", "shown");
          window.setTimeout(function () {
            out.textContent = "";
            out.setAttribute("data-state", "wiped");
          }, (res.body.seconds || seconds) * 1000);
        } else {
          out.classList.add("refused");
          out.setAttribute("data-state", "refused");
          out.textContent = "refused (" + res.status + " " + (res.body.error || "error") + ")";
        }
      })
      .catch(function () {
        out.classList.add("refused");
        out.setAttribute("data-state", "refused");
        out.textContent = "refused (network error)";
      });
  });
})();
