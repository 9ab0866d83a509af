// Herald console: small progressive enhancements. Every page works without this file.
"use strict";

(function () {
  // A page rendered as the answer of a POST (a secret shown once, a test result) gets its own
  // address back, so reloading it does not send the form again.
  var pageUrl = document.body.getAttribute("data-page-url");
  if (pageUrl && window.location.pathname !== pageUrl) {
    window.history.replaceState(null, "", pageUrl);
  }

  // A form with data-confirm asks first; confirmed, it says so to the server, which otherwise
  // asks again on a page of its own.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (!question || !window.confirm(question)) return;
    var confirmed = document.createElement("input");
    confirmed.type = "hidden";
    confirmed.name = "confirmed";
    confirmed.value = "yes";
    form.appendChild(confirmed);
  });

  // Copy buttons: data-copy names the element whose text is copied.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      var label = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = label; }, 1500);
    });
  });

  // Live refresh of a log: re-read the same page's rows every few seconds while ticked.
  var live = document.querySelector("[data-live-target]");
  if (live) {
    var target = document.getElementById(live.getAttribute("data-live-target"));
    var timer = null;
    var refresh = function () {
      fetch(window.location.href, { headers: { "x-herald-fragment": "rows" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null) return;
          var doc = new DOMParser().parseFromString(html, "text/html");
          target.replaceChildren.apply(target, Array.prototype.slice.call(doc.body.childNodes));
        })
        .catch(function () {});
    };
    var toggle = function () {
      if (timer) { window.clearInterval(timer); timer = null; }
      if (live.checked) { refresh(); timer = window.setInterval(refresh, 5000); }
      try { window.localStorage.setItem("herald-live", live.checked ? "1" : ""); } catch (e) {}
    };
    try { live.checked = window.localStorage.getItem("herald-live") === "1"; } catch (e) {}
    live.addEventListener("change", toggle);
    toggle();
  }
})();
