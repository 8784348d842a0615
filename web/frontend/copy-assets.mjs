// Copies the prebuilt bundles of the pinned bpmn.io packages (and their licences) into
// web/static/vendor/, which is committed: `pdcaflow run` and CI need no Node.
// Rebuild: `make assets` (npm ci, then this script).
import { cpSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const modules = join(here, "node_modules");
const vendor = join(here, "..", "static", "vendor");

const files = {
  "bpmn-js/dist/bpmn-navigated-viewer.production.min.js": "bpmn-js/bpmn-navigated-viewer.production.min.js",
  "bpmn-js/dist/bpmn-modeler.production.min.js": "bpmn-js/bpmn-modeler.production.min.js",
  "bpmn-js/dist/assets/diagram-js.css": "bpmn-js/assets/diagram-js.css",
  "bpmn-js/dist/assets/bpmn-js.css": "bpmn-js/assets/bpmn-js.css",
  "bpmn-js/dist/assets/bpmn-font": "bpmn-js/assets/bpmn-font",
  "bpmn-js/LICENSE": "bpmn-js/LICENSE",
  "dmn-js/dist/dmn-modeler.production.min.js": "dmn-js/dmn-modeler.production.min.js",
  "dmn-js/dist/assets": "dmn-js/assets",
  "dmn-js/LICENSE": "dmn-js/LICENSE",
  "camunda-bpmn-moddle/resources/camunda.json": "camunda-bpmn-moddle/camunda.json",
  "camunda-bpmn-moddle/LICENSE": "camunda-bpmn-moddle/LICENSE",
};

rmSync(vendor, { recursive: true, force: true });
for (const [from, to] of Object.entries(files)) {
  const target = join(vendor, to);
  mkdirSync(dirname(target), { recursive: true });
  cpSync(join(modules, from), target, { recursive: true });
}
console.log(`copied ${Object.keys(files).length} entries to ${vendor}`);
