// The decision editor: dmn-js Modeler on a deployed DMN document, Deploy (the deploy checks run on
// the server, problems listed), and "test this decision" against the deployed version.
(function () {
  "use strict";
  var box = document.getElementById("dmn-modeler");
  if (!box) { return; }
  var data = JSON.parse(document.getElementById(box.dataset.source).textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var statusEl = document.getElementById("modeler-status");
  var modeler = new window.DmnJS({ container: box });
  window.pfDmnModeler = modeler;  // for tests and the browser console

  function status(text, cls) { statusEl.textContent = text; statusEl.className = cls || ""; }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(body) }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
    });
  }
  function value(input) {
    var raw = input.value.trim();
    if (raw === "") { return null; }
    try { return JSON.parse(raw); } catch (e) { return raw; }
  }

  modeler.importXML(data.xml).then(function () {
    var view = modeler.getViews().find(function (v) { return v.element.id === data.key && v.type !== "drd"; });
    if (view) { return modeler.open(view); }
  }).then(function () {
    box.classList.add("pf-ready");
  }).catch(function (err) { status("The decision cannot be opened: " + err.message, "error"); });

  document.getElementById("deploy").addEventListener("click", function () {
    status("Deploying…");
    modeler.saveXML({ format: true }).then(function (r) {
      return post(box.dataset.deployUrl, { xml: r.xml, key: data.key, kind: "dmn" });
    }).then(function (r) {
      var list = document.getElementById("problems");
      list.replaceChildren();
      (r.body.problems || []).forEach(function (p) {
        var li = document.createElement("li");
        li.className = p.severity === "warning" ? "warning" : "error";
        li.textContent = "line " + (p.line === null ? "?" : p.line) + " · " + p.element + ": " + p.message;
        list.appendChild(li);
      });
      if (!r.body.ok) { status("Not deployed: see the errors below.", "error"); return; }
      var mine = (r.body.results || []).find(function (x) { return x.key === data.key; }) || (r.body.results || [])[0];
      status(mine ? mine.key + " v" + mine.version + (mine.unchanged ? " (unchanged)" : " deployed") : "Deployed.", "ok");
    });
  });

  document.getElementById("download").addEventListener("click", function () {
    modeler.saveXML({ format: true }).then(function (r) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([r.xml], { type: "application/xml" }));
      a.download = data.key + ".dmn";
      a.click();
    });
  });

  document.getElementById("try-decision").addEventListener("submit", function (event) {
    event.preventDefault();
    var variables = {};
    document.querySelectorAll("#try-decision [data-variable]").forEach(function (input) {
      variables[input.dataset.variable] = value(input);
    });
    post(box.dataset.evaluateUrl, { variables: variables }).then(function (r) {
      var out = document.getElementById("decision-result");
      out.className = "data " + (r.status === 200 ? "ok" : "error");
      out.textContent = r.status === 200 ? JSON.stringify(r.body.result, null, 2)
        : ((r.body.error && r.body.error.message) || ("failed (" + r.status + ")"));
    });
  });
}());
