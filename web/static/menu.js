// The header's menu button on small screens: shows and hides the main navigation.
// Without this script the button stays hidden and the links wrap (app.css, "header on small screens").
(function () {
  "use strict";
  var header = document.querySelector("header.top");
  var button = document.getElementById("menu-toggle");
  var nav = document.getElementById("main-nav");
  if (!header || !button || !nav) {
    return;
  }
  header.classList.add("has-menu");
  button.hidden = false;
  function show(open) {
    button.setAttribute("aria-expanded", open ? "true" : "false");
    nav.classList.toggle("open", open);
  }
  button.addEventListener("click", function () {
    show(button.getAttribute("aria-expanded") !== "true");
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      show(false);
      button.focus();
    }
  });
})();
