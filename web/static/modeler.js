// The quality lead's modeler: bpmn-js Modeler with Camunda's moddle, a small properties form for
// what PDCA Flow runs, server-side drafts, Validate (the deploy checks, each problem listed and
// marked on its element) and Deploy. Server side: web/modeler.py.
(function () {
  "use strict";
  var box = document.getElementById("modeler");
  if (!box) { return; }
  var data = JSON.parse(document.getElementById(box.dataset.source).textContent);
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var statusEl = document.getElementById("modeler-status");
  var panel = box.querySelector(".pf-properties");
  var modeler, problemOverlays = [], markedProblems = [];

  function status(text, cls) { statusEl.textContent = text; statusEl.className = cls || ""; }
  function el(tag, text, cls) { var e = document.createElement(tag); if (text) { e.textContent = text; } if (cls) { e.className = cls; } return e; }

  // ---- properties: [attribute, label, hint] per element type; camunda:* go through Camunda's moddle
  var USER_TASK = [["camunda:assignee", "Assignee", "a user name or ${expression}"],
                   ["camunda:candidateGroups", "Candidate groups", "comma-separated, e.g. quality_lead"],
                   ["camunda:candidateUsers", "Candidate users", "comma-separated user names"],
                   ["camunda:dueDate", "Due date", "ISO date-time, or a duration from creation such as P2D"],
                   ["camunda:followUpDate", "Follow-up date", "ISO date-time or duration"],
                   ["camunda:priority", "Priority", "a number"],
                   ["camunda:formKey", "Form key", "optional"]];
  var EXTERNAL = [["camunda:type", "Implementation type", "external: done by a worker over /engine-rest"],
                  ["camunda:topic", "External topic", "the topic workers fetch"]];
  var FIELDS = {
    "bpmn:UserTask": USER_TASK,
    "bpmn:ServiceTask": EXTERNAL, "bpmn:SendTask": EXTERNAL,
    "bpmn:BusinessRuleTask": [["camunda:decisionRef", "Decision key", "a deployed DMN decision"],
                              ["camunda:resultVariable", "Result variable", ""],
                              ["camunda:mapDecisionResult", "Map decision result", "singleEntry, singleResult, collectEntries, resultList"]],
    "bpmn:CallActivity": [["calledElement", "Called process key", ""]],
    "bpmn:ScriptTask": [["scriptFormat", "Script format", "python"]]
  };

  function field(container, label, value, hint, onChange, id) {
    var l = el("label", label);
    l.htmlFor = id;
    var input = document.createElement("input");
    input.id = id;
    input.value = value || "";
    input.addEventListener("change", function () { onChange(input.value.trim()); });
    container.appendChild(l);
    container.appendChild(input);
    if (hint) { container.appendChild(el("p", hint, "hint")); }
    return input;
  }

  function formal(body) {
    return body ? modeler.get("moddle").create("bpmn:FormalExpression", { body: body }) : undefined;
  }

  function showProperties(element) {
    var modeling = modeler.get("modeling");
    var bo = element.businessObject;
    panel.replaceChildren();
    panel.appendChild(el("h3", bo.name || bo.id));
    panel.appendChild(el("p", element.type.replace("bpmn:", "") + " · " + bo.id, "muted"));
    var isRoot = element === modeler.get("canvas").getRootElement();
    field(panel, isRoot ? "Process key (id)" : "Id", bo.id, isRoot ? "the key it deploys as" : "", function (v) {
      if (v) { modeling.updateProperties(element, { id: v }); }
    }, "prop-id");
    field(panel, "Name", bo.name, "", function (v) { modeling.updateProperties(element, { name: v || undefined }); }, "prop-name");
    (FIELDS[element.type] || []).forEach(function (f) {
      field(panel, f[1], bo.get(f[0]), f[2], function (v) {
        var props = {};
        props[f[0]] = v || undefined;
        modeling.updateProperties(element, props);
      }, "prop-" + f[0].replace("camunda:", ""));
    });
    if (element.type === "bpmn:SequenceFlow" && bo.sourceRef && /Gateway$/.test(bo.sourceRef.$type)) {
      field(panel, "Condition", bo.conditionExpression && bo.conditionExpression.body,
            "e.g. ${severity == 'critical'}; empty on the default flow", function (v) {
        modeling.updateProperties(element, { conditionExpression: formal(v) });
      }, "prop-condition");
    }
    if (element.type === "bpmn:UserTask" || (element.type === "bpmn:StartEvent" && !(bo.eventDefinitions || []).length)) {
      panel.appendChild(formEditor(element));
    }
    if (element.type === "bpmn:CallActivity") { panel.appendChild(mappingsEditor(element)); }
    if (!isRoot && element.type !== "label" && !/^bpmn:(Participant|Lane|TextAnnotation|Association|Group)$/.test(element.type)) {
      panel.appendChild(listenersEditor(element));
    }
    if (isRoot || /^bpmn:(UserTask|ServiceTask|SendTask|BusinessRuleTask)$/.test(element.type)) {
      panel.appendChild(propertiesEditor(element));
    }
    (bo.eventDefinitions || []).forEach(function (def) {
      if (def.$type === "bpmn:TimerEventDefinition") {
        var kind = def.timeDate ? "timeDate" : def.timeCycle ? "timeCycle" : "timeDuration";
        field(panel, "Timer (" + kind + ")", def[kind] && def[kind].body, "ISO duration (PT2H), date-time, or cycle (R3/PT1H)", function (v) {
          var props = { timeDate: undefined, timeCycle: undefined, timeDuration: undefined };
          props[kind] = formal(v);
          modeling.updateModdleProperties(element, def, props);
        }, "prop-timer");
      }
      if (def.$type === "bpmn:MessageEventDefinition") {
        field(panel, "Message name", def.messageRef && def.messageRef.name, "", function (v) {
          var moddle = modeler.get("moddle");
          var definitions = modeler.getDefinitions();
          var message = (definitions.rootElements || []).find(function (r) { return r.$type === "bpmn:Message" && r.name === v; });
          if (v && !message) {
            message = moddle.create("bpmn:Message", { id: "Message_" + Math.random().toString(36).slice(2, 9), name: v });
            message.$parent = definitions;
            definitions.rootElements.push(message);
          }
          modeling.updateModdleProperties(element, def, { messageRef: v ? message : undefined });
        }, "prop-message");
      }
    });
  }

  // ---- form fields (camunda:formData) of user tasks and none start events; each field is changed
  // in place, so what the form editor does not show (enum values, other constraints) is kept
  var TYPES = ["string", "long", "boolean", "date", "enum"];

  function extension(element, type, create, init) {
    var bo = element.businessObject, moddle = modeler.get("moddle"), modeling = modeler.get("modeling");
    var ext = bo.extensionElements;
    var data = ext && (ext.values || []).find(function (v) { return v.$type === type; });
    if (data || !create) { return data; }
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", { values: [] });
      modeling.updateProperties(element, { extensionElements: ext });
    }
    data = moddle.create(type, init);
    data.$parent = ext;
    modeling.updateModdleProperties(element, ext, { values: (ext.values || []).concat([data]) });
    return data;
  }

  function formData(element, create) { return extension(element, "camunda:FormData", create, { fields: [] }); }

  // camunda:properties (name = value): escalation.* on processes and user tasks, connector settings
  function propertiesEditor(element) {
    var section = el("section", null, "pf-form-fields");
    section.appendChild(el("h4", "Extension properties"));
    section.appendChild(el("p", "e.g. escalation.grace = P2D, escalation.to = quality_lead", "hint"));
    var modeling = modeler.get("modeling");
    var props = extension(element, "camunda:Properties", false);
    ((props && props.values) || []).forEach(function (p, i) {
      var row = el("fieldset", null, "pf-form-field");
      field(row, "Name", p.name, "", function (v) { modeling.updateModdleProperties(element, p, { name: v || undefined }); }, "ext-" + i + "-name");
      field(row, "Value", p.value, "", function (v) { modeling.updateModdleProperties(element, p, { value: v }); }, "ext-" + i + "-value");
      var remove = el("button", "Remove property");
      remove.type = "button";
      remove.addEventListener("click", function () {
        modeling.updateModdleProperties(element, props, { values: props.values.filter(function (x) { return x !== p; }) });
        showProperties(element);
      });
      row.appendChild(remove);
      section.appendChild(row);
    });
    var add = el("button", "Add property");
    add.type = "button";
    add.id = "add-extension-property";
    add.addEventListener("click", function () {
      var target = extension(element, "camunda:Properties", true, { values: [] });
      var p = modeler.get("moddle").create("camunda:Property", { name: "escalation.grace", value: "P1D" });
      p.$parent = target;
      modeling.updateModdleProperties(element, target, { values: (target.values || []).concat([p]) });
      showProperties(element);
    });
    section.appendChild(add);
    return section;
  }

  function isRequired(field) {
    return !!(field.validation && (field.validation.constraints || []).some(function (c) { return c.name === "required"; }));
  }

  function setRequired(element, field, on) {
    var moddle = modeler.get("moddle"), modeling = modeler.get("modeling");
    var validation = field.validation;
    if (!validation) {
      validation = moddle.create("camunda:Validation", { constraints: [] });
      validation.$parent = field;
      modeling.updateModdleProperties(element, field, { validation: validation });
    }
    var others = (validation.constraints || []).filter(function (c) { return c.name !== "required"; });
    if (on) {
      var c = moddle.create("camunda:Constraint", { name: "required" });
      c.$parent = validation;
      others.push(c);
    }
    modeling.updateModdleProperties(element, validation, { constraints: others });
  }

  function formEditor(element) {
    var section = el("section", null, "pf-form-fields");
    section.appendChild(el("h4", "Form fields"));
    var data = formData(element, false);
    var modeling = modeler.get("modeling");
    ((data && data.fields) || []).forEach(function (f, i) {
      var row = el("fieldset", null, "pf-form-field");
      row.appendChild(el("legend", f.label || f.id));
      field(row, "Field id", f.id, "", function (v) { if (v) { modeling.updateModdleProperties(element, f, { id: v }); } }, "form-" + i + "-id");
      field(row, "Label", f.label, "", function (v) { modeling.updateModdleProperties(element, f, { label: v || undefined }); }, "form-" + i + "-label");
      var tl = el("label", "Type");
      tl.htmlFor = "form-" + i + "-type";
      var select = document.createElement("select");
      select.id = tl.htmlFor;
      TYPES.forEach(function (t) { var o = el("option", t); o.value = t; o.selected = (f.type || "string") === t; select.appendChild(o); });
      select.addEventListener("change", function () { modeling.updateModdleProperties(element, f, { type: select.value }); });
      row.appendChild(tl);
      row.appendChild(select);
      var rl = el("label", null, "check");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.id = "form-" + i + "-required";
      box.checked = isRequired(f);
      box.addEventListener("change", function () { setRequired(element, f, box.checked); });
      rl.appendChild(box);
      rl.appendChild(document.createTextNode(" required"));
      row.appendChild(rl);
      var remove = el("button", "Remove field");
      remove.type = "button";
      remove.addEventListener("click", function () {
        modeling.updateModdleProperties(element, data, { fields: data.fields.filter(function (x) { return x !== f; }) });
        showProperties(element);
      });
      row.appendChild(remove);
      section.appendChild(row);
    });
    var add = el("button", "Add form field");
    add.type = "button";
    add.id = "add-form-field";
    add.addEventListener("click", function () {
      var target = formData(element, true);
      var n = (target.fields || []).length + 1;
      var f = modeler.get("moddle").create("camunda:FormField", { id: "field_" + n, label: "Field " + n, type: "string" });
      f.$parent = target;
      modeling.updateModdleProperties(element, target, { fields: (target.fields || []).concat([f]) });
      showProperties(element);
    });
    section.appendChild(add);
    return section;
  }

  // ---- call activity mappings: camunda:in / camunda:out (source -> target, or all variables)
  function mappingsEditor(element) {
    var section = el("section", null, "pf-form-fields");
    section.appendChild(el("h4", "Variable mappings"));
    section.appendChild(el("p", "in: into the called process; out: back from it. Source * maps all variables.", "hint"));
    var moddle = modeler.get("moddle"), modeling = modeler.get("modeling");
    var ext = element.businessObject.extensionElements;
    var maps = ((ext && ext.values) || []).filter(function (v) { return v.$type === "camunda:In" || v.$type === "camunda:Out"; });
    maps.forEach(function (m, i) {
      var row = el("fieldset", null, "pf-form-field");
      row.appendChild(el("legend", m.$type === "camunda:In" ? "in" : "out"));
      field(row, "Source", m.variables === "all" ? "*" : (m.source || m.sourceExpression), "", function (v) {
        modeling.updateModdleProperties(element, m, v === "*" ? { variables: "all", source: undefined, target: undefined }
                                                            : { variables: undefined, source: v || undefined });
      }, "map-" + i + "-source");
      field(row, "Target", m.target, "", function (v) { modeling.updateModdleProperties(element, m, { target: v || undefined }); },
            "map-" + i + "-target");
      var remove = el("button", "Remove mapping");
      remove.type = "button";
      remove.addEventListener("click", function () {
        modeling.updateModdleProperties(element, ext, { values: ext.values.filter(function (x) { return x !== m; }) });
        showProperties(element);
      });
      row.appendChild(remove);
      section.appendChild(row);
    });
    ["In", "Out"].forEach(function (kind) {
      var add = el("button", "Add " + kind.toLowerCase() + " mapping");
      add.type = "button";
      add.id = "add-" + kind.toLowerCase() + "-mapping";
      add.addEventListener("click", function () {
        var target = element.businessObject.extensionElements;
        if (!target) {
          target = moddle.create("bpmn:ExtensionElements", { values: [] });
          modeling.updateProperties(element, { extensionElements: target });
        }
        var m = moddle.create("camunda:" + kind, { variables: "all" });
        m.$parent = target;
        modeling.updateModdleProperties(element, target, { values: (target.values || []).concat([m]) });
        showProperties(element);
      });
      section.appendChild(add);
    });
    return section;
  }

  // ---- script listeners: camunda:executionListener (start, end, take) and, on user tasks,
  // camunda:taskListener (create, assignment, complete), each an inline Python script
  function listenersEditor(element) {
    var section = el("section", null, "pf-form-fields");
    section.appendChild(el("h4", "Script listeners"));
    var moddle = modeler.get("moddle"), modeling = modeler.get("modeling");
    var ext = element.businessObject.extensionElements;
    var kinds = element.type === "bpmn:UserTask" ? ["ExecutionListener", "TaskListener"] : ["ExecutionListener"];
    var events = { ExecutionListener: element.type === "bpmn:SequenceFlow" ? ["take"] : ["start", "end"],
                   TaskListener: ["create", "assignment", "complete"] };
    var listeners = ((ext && ext.values) || []).filter(function (v) { return /^camunda:(Execution|Task)Listener$/.test(v.$type); });
    listeners.forEach(function (l, i) {
      var kind = l.$type.replace("camunda:", "");
      var row = el("fieldset", null, "pf-form-field");
      row.appendChild(el("legend", (kind === "TaskListener" ? "task" : "execution") + " listener"));
      var label = el("label", "Event");
      label.htmlFor = "listener-" + i + "-event";
      var select = document.createElement("select");
      select.id = label.htmlFor;
      events[kind].forEach(function (e) { var o = el("option", e); o.value = e; o.selected = l.event === e; select.appendChild(o); });
      select.addEventListener("change", function () { modeling.updateModdleProperties(element, l, { event: select.value }); });
      row.appendChild(label);
      row.appendChild(select);
      var sl = el("label", "Script (Python)");
      sl.htmlFor = "listener-" + i + "-script";
      var area = document.createElement("textarea");
      area.id = sl.htmlFor;
      area.rows = 3;
      area.value = (l.script && l.script.value) || "";
      if (l.class || l.expression || l.delegateExpression) { area.placeholder = "(a Java listener: see the deploy warning)"; }
      area.addEventListener("change", function () {
        var script = moddle.create("camunda:Script", { scriptFormat: "python", value: area.value });
        script.$parent = l;
        modeling.updateModdleProperties(element, l, { script: script, "class": undefined, expression: undefined,
                                                      delegateExpression: undefined });
      });
      row.appendChild(sl);
      row.appendChild(area);
      var remove = el("button", "Remove listener");
      remove.type = "button";
      remove.addEventListener("click", function () {
        modeling.updateModdleProperties(element, ext, { values: ext.values.filter(function (x) { return x !== l; }) });
        showProperties(element);
      });
      row.appendChild(remove);
      section.appendChild(row);
    });
    kinds.forEach(function (kind) {
      var add = el("button", "Add " + (kind === "TaskListener" ? "task" : "execution") + " listener");
      add.type = "button";
      add.id = "add-" + kind.toLowerCase();
      add.addEventListener("click", function () {
        var target = element.businessObject.extensionElements;
        if (!target) {
          target = moddle.create("bpmn:ExtensionElements", { values: [] });
          modeling.updateProperties(element, { extensionElements: target });
        }
        var l = moddle.create("camunda:" + kind, { event: events[kind][0] });
        var script = moddle.create("camunda:Script", { scriptFormat: "python", value: "" });
        script.$parent = l;
        l.script = script;
        l.$parent = target;
        modeling.updateModdleProperties(element, target, { values: (target.values || []).concat([l]) });
        showProperties(element);
      });
      section.appendChild(add);
    });
    return section;
  }

  // ---- server calls
  function xml() { return modeler.saveXML({ format: true }).then(function (r) { return r.xml; }); }
  function key() {  // the executable process's id: the key the diagram deploys as
    var bo = modeler.get("canvas").getRootElement().businessObject;
    if (bo.$type !== "bpmn:Collaboration") { return bo.id; }
    var found = (bo.participants || []).map(function (p) { return p.processRef; })
      .find(function (p) { return p && p.isExecutable; });
    return found ? found.id : data.key;
  }
  function post(url, body) {
    return fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json" },
      body: JSON.stringify(body) }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) { return { status: r.status, body: j }; });
    });
  }

  function clearProblems() {
    var canvas = modeler.get("canvas");
    markedProblems.forEach(function (m) { canvas.removeMarker(m[0], m[1]); });
    problemOverlays.forEach(function (id) { modeler.get("overlays").remove(id); });
    markedProblems = []; problemOverlays = [];
  }

  function showProblems(problems) {
    clearProblems();
    var list = document.getElementById("problems");
    var section = document.getElementById("problems-section");
    var registry = modeler.get("elementRegistry");
    list.replaceChildren();
    section.hidden = !problems.length;
    var errors = problems.filter(function (p) { return p.severity !== "warning"; }).length;
    document.getElementById("problems-title").textContent = errors + " error" + (errors === 1 ? "" : "s") + ", " +
      (problems.length - errors) + " warning" + (problems.length - errors === 1 ? "" : "s");
    problems.forEach(function (p) {
      var sev = p.severity === "warning" ? "warning" : "error";
      var li = el("li", "line " + (p.line === null ? "?" : p.line) + " · " + p.element + ": " + (sev === "warning" ? "warning: " : "") + p.message, sev);
      if (p.element_id) { li.dataset.elementId = p.element_id; }
      li.addEventListener("click", function () {
        var target = p.element_id && registry.get(p.element_id);
        if (target) { modeler.get("selection").select(target); modeler.get("canvas").scrollToElement(target); }
      });
      list.appendChild(li);
      if (p.element_id && registry.get(p.element_id)) {
        modeler.get("canvas").addMarker(p.element_id, "pf-" + sev);
        markedProblems.push([p.element_id, "pf-" + sev]);
        problemOverlays.push(modeler.get("overlays").add(p.element_id, "pf-problem", {
          position: { top: -10, right: 10 }, html: el("span", sev === "warning" ? "!" : "✕", "pf-badge pf-problem-" + sev) }));
      }
    });
  }

  var compared = [];
  function showComparison(c) {
    var canvas = modeler.get("canvas"), registry = modeler.get("elementRegistry");
    compared.forEach(function (m) { canvas.removeMarker(m[0], m[1]); });
    compared = [];
    var out = document.getElementById("compare");
    if (!c) { out.textContent = "Not deployed yet: nothing to compare with."; return; }
    out.textContent = "Compared with the deployed v" + c.version + ": " + c.added.length + " added, " +
      c.changed.length + " changed, " + c.removed.length + " removed" +
      (c.removed.length ? " (" + c.removed.join(", ") + ")" : "") + ".";
    [["added", "pf-added"], ["changed", "pf-changed"]].forEach(function (kind) {
      c[kind[0]].forEach(function (id) {
        if (registry.get(id)) { canvas.addMarker(id, kind[1]); compared.push([id, kind[1]]); }
      });
    });
  }

  function saveDraft() {
    return xml().then(function (x) {
      return post(box.dataset.draftUrl.replace("KEY", encodeURIComponent(key())), { xml: x, base_version: data.version });
    }).then(function (r) { status(r.status === 200 ? "Draft saved." : "The draft was not saved (" + r.status + ").", r.status === 200 ? "ok" : "error"); });
  }

  function validate() {
    status("Validating…");
    return xml().then(function (x) { return post(box.dataset.validateUrl, { xml: x, key: key() }); }).then(function (r) {
      showProblems(r.body.problems || []);
      showComparison(r.body.compare);
      status(r.body.ok ? "Valid: it deploys." : "Not deployable: see the errors below.", r.body.ok ? "ok" : "error");
    });
  }

  function deploy() {
    status("Deploying…");
    return xml().then(function (x) { return post(box.dataset.deployUrl, { xml: x, key: key() }); }).then(function (r) {
      showProblems(r.body.problems || []);
      if (!r.body.ok) { status("Not deployed: see the errors below.", "error"); return; }
      statusEl.replaceChildren();
      (r.body.results || []).forEach(function (res) {
        var a = el("a", res.key + " v" + res.version + (res.unchanged ? " (unchanged)" : " deployed"));
        a.href = res.url;
        a.className = "deployed";
        statusEl.appendChild(a);
        statusEl.appendChild(document.createTextNode(" "));
      });
    });
  }

  function download() {
    xml().then(function (x) {
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([x], { type: "application/xml" }));
      a.download = key() + ".bpmn";
      a.click();
    });
  }

  fetch(box.dataset.camunda).then(function (r) { return r.json(); }).then(function (camunda) {
    modeler = new window.BpmnJS({ container: box.querySelector(".pf-modeler-canvas"), moddleExtensions: { camunda: camunda } });
    window.pfModeler = modeler;  // for tests and the browser console
    return modeler.importXML(data.xml);
  }).then(function () {
    var canvas = modeler.get("canvas");
    canvas.zoom("fit-viewport", "auto");
    var vb = canvas.viewbox(), pad = 150 / vb.scale;  // room on the left for the palette
    canvas.viewbox({ x: vb.x - pad, y: vb.y - pad / 4, width: vb.width + pad * 1.2, height: vb.height + pad / 2 });
    modeler.get("eventBus").on("selection.changed", function (e) {
      showProperties(e.newSelection.length === 1 ? e.newSelection[0] : modeler.get("canvas").getRootElement());
    });
    modeler.get("eventBus").on("element.changed", function (e) {
      var selected = modeler.get("selection").get();
      if (selected.length === 1 && selected[0] === e.element && !panel.contains(document.activeElement)) { showProperties(e.element); }
    });
    showProperties(modeler.get("canvas").getRootElement());
    document.getElementById("save-draft").addEventListener("click", saveDraft);
    document.getElementById("validate").addEventListener("click", validate);
    document.getElementById("deploy").addEventListener("click", deploy);
    document.getElementById("download").addEventListener("click", download);
    box.classList.add("pf-ready");
  }).catch(function (err) { status("The diagram cannot be opened: " + err.message, "error"); });
}());
