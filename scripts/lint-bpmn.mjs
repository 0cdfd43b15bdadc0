// Lints one BPMN file with bpmnlint and the repository's .bpmnlintrc (the rules the modeler's
// bpmn-js-bpmnlint runs), printing {"reports": [{"id", "message", "category", "rule"}]} as JSON,
// or {"fatal": message} when the file cannot be read as BPMN. Run by engine/workflow/lint.py:
//   node scripts/lint-bpmn.mjs diagram.bpmn
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const Linter = require("bpmnlint/lib/linter");
const NodeResolver = require("bpmnlint/lib/resolver/node-resolver");
const { BpmnModdle } = require("bpmn-moddle");

const config = JSON.parse(await readFile(join(root, ".bpmnlintrc"), "utf-8"));
const xml = await readFile(process.argv[2], "utf-8");
let rootElement;
try {
  ({ rootElement } = await new BpmnModdle().fromXML(xml));
} catch (error) {
  console.log(JSON.stringify({ fatal: String(error.message || error).split("\n")[0] }));
  process.exit(0);
}
const results = await new Linter({ config, resolver: new NodeResolver({ require }) }).lint(rootElement);
const reports = [];
for (const [rule, items] of Object.entries(results)) {
  for (const { id, message, category } of items) {
    reports.push({ id: id || null, message, category: category === "warn" ? "warning" : category, rule });
  }
}
console.log(JSON.stringify({ reports }));
