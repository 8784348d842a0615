// The bpmn-js viewer wherever PDCA Flow shows a diagram: instance pages (element states as the
// classes pf-completed / pf-active / pf-waiting / pf-incident, DESIGN §8), process pages (counts per
// element) and the KPI heat map. The data comes from a JSON block the server rendered beside the
// container; no inline script, so the Content-Security-Policy stays strict.
(function () {
  "use strict";

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) { el.className = cls; }
    return el;
  }

  function badge(value, cls, title) {
    var el = text("span", value, "pf-badge " + cls);
    if (title) { el.title = title; }
    return el;
  }

  function fmt(iso) {
    if (!iso) { return ""; }
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  function details(panel, id, name, info, data) {
    panel.replaceChildren();
    panel.appendChild(text("h3", name || id));
    panel.appendChild(text("p", id, "muted"));
    if (!info) { panel.appendChild(text("p", "Not reached in this instance.")); return; }
    var dl = document.createElement("dl");
    dl.className = "data";
    function row(k, v) { if (v === undefined || v === null || v === "") { return; } dl.appendChild(text("dt", k)); dl.appendChild(text("dd", String(v))); }
    row("State", info.state + (info.count > 1 ? " (" + info.count + " runs)" : ""));
    row("Waiting for", info.waiting_for);
    row("Due", fmt(info.due));
    row("Topic", info.topic);
    row("Message", info.message);
    (info.tasks || []).forEach(function (t) {
      row("Task", t.name + " — " + t.state);
      row("Assignee", t.assignee);
      row("Candidate groups", (t.groups || []).join(", "));
      row("Task due", fmt(t.due_at));
      row("Completed by", t.completed_by);
    });
    panel.appendChild(dl);
    (info.tasks || []).forEach(function (t) {
      if (t.url) { var a = text("a", "Open “" + t.name + "”"); a.href = t.url; panel.appendChild(a); }
    });
    (info.incidents || []).forEach(function (i) {
      panel.appendChild(text("p", "Incident: " + i.message, "error pf-incident-message"));
    });
    if ((info.incidents || []).length && data.retry_url) {
      var link = text("a", "Retry on the instance's actions", "pf-retry");
      link.href = data.retry_url;
      panel.appendChild(link);
    }
  }

  function controls(box, canvas) {
    var bar = document.createElement("div");
    bar.className = "pf-controls";
    [["+", "Zoom in", function () { canvas.zoom(canvas.zoom() * 1.25); }],
     ["−", "Zoom out", function () { canvas.zoom(canvas.zoom() / 1.25); }],
     ["Fit", "Fit to screen", function () { canvas.zoom("fit-viewport", "auto"); }]].forEach(function (b) {
      var button = text("button", b[0], "pf-" + b[1].toLowerCase().replace(/ /g, "-"));
      button.type = "button";
      button.title = b[1];
      button.setAttribute("aria-label", b[1]);
      button.addEventListener("click", b[2]);
      bar.appendChild(button);
    });
    box.appendChild(bar);
  }

  function show(box) {
    var data = JSON.parse(document.getElementById(box.dataset.source).textContent);
    var canvasBox = box.querySelector(".pf-canvas");
    var viewer = new window.BpmnJS({ container: canvasBox });
    viewer.importXML(data.xml).then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      var overlays = viewer.get("overlays");
      canvas.zoom("fit-viewport", "auto");
      controls(box, canvas);
      var elements = data.elements || {};
      Object.keys(elements).forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, "pf-" + elements[id].state); }
        var info = elements[id];
        if (info.state === "waiting" && info.due && registry.get(id)) {
          overlays.add(id, { position: { bottom: 18, left: -10 }, html: badge("⏱ " + fmt(info.due), "pf-due") });
        }
      });
      (data.flows || []).forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "pf-completed"); } });
      Object.keys(data.counts || {}).forEach(function (id) {
        var c = data.counts[id];
        if (!registry.get(id)) { return; }
        if (c.running) { overlays.add(id, { position: { bottom: 10, left: -8 }, html: badge(c.running, "pf-count-running", c.running + " running here") }); }
        if (c.incidents) { overlays.add(id, { position: { bottom: 10, right: 10 }, html: badge(c.incidents, "pf-count-incidents", c.incidents + " open incidents") }); }
      });
      var heat = data.heat || {};
      var peak = Math.max.apply(null, [0].concat(Object.keys(heat).map(function (k) { return heat[k]; })));
      Object.keys(heat).forEach(function (id) {
        if (!registry.get(id) || peak <= 0) { return; }
        canvas.addMarker(id, "pf-heat-" + Math.min(4, Math.floor(4 * heat[id] / peak)));
        overlays.add(id, { position: { bottom: -4, left: 0 }, html: badge("⌀ " + heat[id] + " h", "pf-heat", "average time in this step") });
      });
      var panel = box.querySelector(".pf-details");
      if (panel) {
        viewer.get("eventBus").on("element.click", function (event) {
          var el = event.element;
          if (el.type === "bpmn:Process" || el.type === "bpmn:Collaboration") { return; }
          details(panel, el.id, el.businessObject && el.businessObject.name, elements[el.id], data);
        });
      }
      box.classList.add("pf-ready");
    }).catch(function (err) {
      box.appendChild(text("p", "The diagram cannot be shown: " + err.message, "error"));
    });
  }

  document.querySelectorAll("[data-bpmn-viewer]").forEach(show);
}());
