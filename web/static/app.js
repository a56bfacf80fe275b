// Herald's pages work without this script; it only adds copy buttons,
// confirmation dialogs, the reveal of a secret in place, the live message
// log and the portal's sign-in from the link's #token=… fragment.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf") || "";

  function post(url, body, accept) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf, "X-Herald-Fetch": "1", "Accept": accept || "application/json" },
      body: body
    });
  }

  // Copy buttons: data-copy names the element whose text is copied.
  document.querySelectorAll("[data-copy]").forEach(function (b) {
    if (!navigator.clipboard) return;
    b.hidden = false;
    b.addEventListener("click", function () {
      var el = document.getElementById(b.getAttribute("data-copy"));
      if (!el) return;
      navigator.clipboard.writeText(el.textContent).then(function () {
        var label = b.textContent;
        b.textContent = "Copied";
        setTimeout(function () { b.textContent = label; }, 1500);
      });
    });
  });

  // Forms with data-confirm ask first.
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault();
    });
  });

  // Reveal a secret in place instead of reloading the page.
  document.querySelectorAll("form[data-reveal]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      e.preventDefault();
      var out = document.getElementById(f.getAttribute("data-reveal"));
      post(f.action, "").then(function (r) {
        if (!r.ok) throw new Error("status " + r.status);
        return r.json();
      }).then(function (j) {
        document.getElementById("secret-value").textContent = j.key;
        out.hidden = false;
      }).catch(function () {
        f.submit();
      });
    });
  });

  // The live message log: refresh the first page's table every 5 s.
  var live = document.querySelector("[data-live]");
  if (live) {
    live.parentElement.hidden = false;
    var timer = null;
    var target = document.getElementById(live.getAttribute("data-target"));
    var refresh = function () {
      fetch(live.getAttribute("data-live"), { credentials: "same-origin", headers: { "X-Herald-Fetch": "1", "Accept": "text/html" } })
        .then(function (r) { if (!r.ok) throw new Error("status " + r.status); return r.text(); })
        .then(function (html) {
          // The fragment is our own server-rendered, escaped HTML.
          var doc = new DOMParser().parseFromString(html, "text/html");
          target.replaceChildren.apply(target, Array.prototype.slice.call(doc.body.childNodes));
        })
        .catch(function () { live.checked = false; stop(); });
    };
    var stop = function () { if (timer) clearInterval(timer); timer = null; };
    live.addEventListener("change", function () {
      stop();
      if (live.checked) { refresh(); timer = setInterval(refresh, 5000); }
    });
  }

  // Portal sign-in: the link carries the token in the fragment, which no
  // server or log ever sees. Take it out of the address bar, then post it.
  var login = document.querySelector("form[data-portal-login]");
  if (login && location.hash.indexOf("token=") >= 0) {
    var params = new URLSearchParams(location.hash.slice(1));
    var token = params.get("token");
    history.replaceState(null, "", location.pathname + location.search);
    if (token) {
      var status = document.getElementById("portal-status");
      status.hidden = false;
      // The form's hidden fields: the CSRF value and the link's theme
      // options, which the server remembers only if the token signs in.
      var body = new URLSearchParams();
      login.querySelectorAll("input[type=hidden]").forEach(function (i) { body.set(i.name, i.value); });
      body.set("token", token);
      fetch(login.action, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Herald-Fetch": "1" },
        body: body.toString()
      }).then(function (r) {
        if (r.ok) { location.assign(login.getAttribute("data-portal-login")); return; }
        status.textContent = r.status === 429 ? "Too many attempts; wait a minute and reload." : "This link is invalid or has expired. Ask for a new one.";
      }).catch(function () {
        status.textContent = "Signing in failed; check your connection and reload.";
      });
    }
  }
})();
