// The process designers' page (/modeler): bpmn-js Modeler with the properties panel and a provider
// for what the engine reads (spiffworkflow:properties formKey/dueIn, instructions, lanes, timers,
// conditions, calledDecisionId), bpmnlint with the repository's .bpmnlintrc, dmn-js for decision
// tables, a form editor with the server's own preview, drafts, validate, test run, deploy and diff.
// Every text comes from the page (data island #modeler-data), in the page's language.
import BpmnModeler from "bpmn-js/lib/Modeler";
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import { BpmnModdle } from "bpmn-moddle";
import { diff as bpmnDiff } from "bpmn-js-differ";
import { BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, useService } from "bpmn-js-properties-panel";
import { SelectEntry, TextFieldEntry, TextAreaEntry, isSelectEntryEdited, isTextFieldEntryEdited,
  isTextAreaEntryEdited } from "@bpmn-io/properties-panel";
import { h } from "@bpmn-io/properties-panel/preact";
import lintModule from "bpmn-js-bpmnlint";
import lintConfig from "bpmnlint-config";
import DmnModeler from "dmn-js/lib/Modeler";
import spiffDescriptor from "./spiffworkflow.json";
import { durationText, timerText, checkDuration } from "./lib/durations.js";

import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css";
import "@bpmn-io/properties-panel/assets/properties-panel.css";
import "bpmn-js-bpmnlint/dist/assets/css/bpmn-js-bpmnlint.css";
import "dmn-js/dist/assets/diagram-js.css";
import "dmn-js/dist/assets/dmn-js-shared.css";
import "dmn-js/dist/assets/dmn-js-drd.css";
import "dmn-js/dist/assets/dmn-js-decision-table.css";
import "dmn-js/dist/assets/dmn-js-decision-table-controls.css";
import "dmn-js/dist/assets/dmn-js-literal-expression.css";
import "dmn-js/dist/assets/dmn-font/css/dmn-embedded.css";
import "./modeler.css";

const DATA = JSON.parse(document.getElementById("modeler-data").textContent);
const M = DATA.messages;
const $ = (id) => document.getElementById(id);
const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (_, k) => (k in values ? values[k] : `{${k}}`));

// ------------------------------------------------------------------ extension elements

const is = (bo, type) => bo && typeof bo.$instanceOf === "function" && bo.$instanceOf(type);
const bo = (element) => (element && element.businessObject) || element;

function extension(element, type) {
  const ext = bo(element).get("extensionElements");
  return ext ? (ext.get("values") || []).find((v) => is(v, type)) : undefined;
}

function property(element, name) {
  const props = extension(element, "spiffworkflow:Properties");
  const found = props ? (props.get("properties") || []).find((p) => p.name === name) : undefined;
  return found ? found.value || "" : "";
}

function ensureExtensions(element, modeling, bpmnFactory) {
  let ext = bo(element).get("extensionElements");
  if (!ext) {
    ext = bpmnFactory.create("bpmn:ExtensionElements", { values: [] });
    modeling.updateProperties(element, { extensionElements: ext });
  }
  return ext;
}

function setProperty(element, name, value, modeling, bpmnFactory) {
  const ext = ensureExtensions(element, modeling, bpmnFactory);
  let props = extension(element, "spiffworkflow:Properties");
  if (!props) {
    props = bpmnFactory.create("spiffworkflow:Properties", { properties: [] });
    modeling.updateModdleProperties(element, ext, { values: [...ext.get("values"), props] });
  }
  const rest = (props.get("properties") || []).filter((p) => p.name !== name);
  const next = value ? [...rest, bpmnFactory.create("spiffworkflow:Property", { name, value })] : rest;
  modeling.updateModdleProperties(element, props, { properties: next });
}

function bodyExtension(element, type) {
  const found = extension(element, type);
  return found ? found.value || "" : "";
}

function setBodyExtension(element, type, value, modeling, bpmnFactory) {
  const ext = ensureExtensions(element, modeling, bpmnFactory);
  const rest = (ext.get("values") || []).filter((v) => !is(v, type));
  const next = value ? [...rest, bpmnFactory.create(type, { value })] : rest;
  modeling.updateModdleProperties(element, ext, { values: next });
}

// ------------------------------------------------------------------ properties provider

const state = { key: null, version: null, opened: null, dmn: {}, forms: {}, lintIssues: {} };

function formOptions() {
  const keys = new Set([...Object.keys(DATA.forms), ...Object.keys(state.forms)]);
  return [{ value: "", label: M.md_choose }, ...[...keys].sort().map((k) => {
    const schema = state.forms[k] || (DATA.forms[k] || {}).schema || {};
    return { value: k, label: schema.title ? `${schema.title} (${k})` : k };
  })];
}

function FormEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  return h(SelectEntry, {
    element, id, label: M.md_form,
    getValue: () => property(element, "formKey"),
    setValue: (v) => setProperty(element, "formKey", v, modeling, bpmnFactory),
    getOptions: formOptions,
  });
}

function DueInEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  const value = property(element, "dueIn");
  return h(TextFieldEntry, {
    element, id, label: M.md_due_in, debounce,
    description: value && !checkDuration(value) ? fmt(M.md_due_preview, { text: durationText(value, DATA.lang) })
      : M.md_due_help,
    getValue: () => property(element, "dueIn"),
    setValue: (v) => setProperty(element, "dueIn", (v || "").trim().toUpperCase(), modeling, bpmnFactory),
    validate: (v) => (v && checkDuration(v.trim().toUpperCase()) ? M.md_due_invalid : null),
  });
}

function InstructionsEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  return h(TextAreaEntry, {
    element, id, label: M.md_instructions, debounce, rows: 3,
    getValue: () => bodyExtension(element, "spiffworkflow:InstructionsForEndUser"),
    setValue: (v) => setBodyExtension(element, "spiffworkflow:InstructionsForEndUser", v, modeling, bpmnFactory),
  });
}

function LaneEntry({ element, id }) {
  const modeling = useService("modeling");
  return h(SelectEntry, {
    element, id, label: M.md_lane_group,
    description: M.md_lane_help,
    getValue: () => bo(element).name || "",
    setValue: (v) => modeling.updateProperties(element, { name: v }),
    getOptions: () => {
      const known = DATA.lanes.map((l) => ({ value: l.lane, label: `${l.lane} — ${l.group_name}` }));
      const current = bo(element).name || "";
      return known.some((o) => o.value === current) ? known
        : [{ value: current, label: fmt(M.md_lane_unknown, { name: current || "—" }) }, ...known];
    },
  });
}

function timerDefinition(element) {
  return (bo(element).get("eventDefinitions") || []).find((d) => is(d, "bpmn:TimerEventDefinition"));
}

const TIMER_KINDS = ["timeDuration", "timeCycle", "timeDate"];

function timerKind(def) {
  return TIMER_KINDS.find((k) => def.get(k)) || "timeDuration";
}

function TimerKindEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const def = timerDefinition(element);
  return h(SelectEntry, {
    element, id, label: M.md_timer_kind,
    getValue: () => timerKind(def),
    setValue: (kind) => {
      const old = def.get(timerKind(def));
      const body = old ? old.body : "";
      const props = { timeDuration: undefined, timeCycle: undefined, timeDate: undefined };
      props[kind] = bpmnFactory.create("bpmn:FormalExpression", { body });
      modeling.updateModdleProperties(element, def, props);
    },
    getOptions: () => TIMER_KINDS.map((k) => ({ value: k, label: M[`md_timer_${k}`] })),
  });
}

function TimerExpressionEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  const def = timerDefinition(element);
  const kind = timerKind(def);
  const current = def.get(kind) ? def.get(kind).body || "" : "";
  return h(TextFieldEntry, {
    element, id, label: M.md_timer_expression, debounce,
    description: current ? timerText(current, kind, DATA.lang, M) : M.md_timer_help,
    getValue: () => (def.get(timerKind(def)) ? def.get(timerKind(def)).body || "" : ""),
    setValue: (v) => modeling.updateModdleProperties(element, def, {
      [timerKind(def)]: bpmnFactory.create("bpmn:FormalExpression", { body: v || "" }) }),
    validate: (v) => {
      const text = (v || "").trim();
      if (!text) return M.md_timer_required;
      if (/^R?\d*\/?P/i.test(text) && !/^["']/.test(text)) return fmt(M.md_timer_quote, { text });
      return null;
    },
  });
}

function ConditionEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  const flow = bo(element);
  return h(TextFieldEntry, {
    element, id, label: M.md_condition, debounce, description: M.md_condition_help,
    getValue: () => (flow.conditionExpression ? flow.conditionExpression.body || "" : ""),
    setValue: (v) => modeling.updateProperties(element, {
      conditionExpression: v ? bpmnFactory.create("bpmn:FormalExpression", { body: v }) : undefined }),
    validate: (v) => {
      const text = (v || "").trim();
      if (!text) return flow.sourceRef && flow.sourceRef.default === flow ? null : M.md_condition_required;
      if (/(^|[^=!<>])=([^=]|$)/.test(text)) return M.md_condition_assign;
      let depth = 0;
      for (const c of text) { depth += c === "(" ? 1 : c === ")" ? -1 : 0; if (depth < 0) break; }
      return depth !== 0 ? M.md_condition_parens : null;
    },
  });
}

function DecisionEntry({ element, id }) {
  const modeling = useService("modeling");
  const bpmnFactory = useService("bpmnFactory");
  const debounce = useService("debounceInput");
  return h(TextFieldEntry, {
    element, id, label: M.md_decision, debounce,
    description: fmt(M.md_decision_help, { ids: knownDecisions().join(", ") || "—" }),
    getValue: () => bodyExtension(element, "spiffworkflow:CalledDecisionId"),
    setValue: (v) => setBodyExtension(element, "spiffworkflow:CalledDecisionId", (v || "").trim(), modeling,
      bpmnFactory),
    validate: (v) => {
      const text = (v || "").trim();
      if (!text) return M.md_decision_required;
      return knownDecisions().includes(text) ? null : fmt(M.md_decision_unknown, { id: text });
    },
  });
}

function knownDecisions() {
  const ids = new Set(DATA.decisions);
  for (const xml of Object.values(state.dmn)) {
    for (const m of xml.matchAll(/<(?:\w+:)?decision\b[^>]*\bid="([^"]+)"/g)) ids.add(m[1]);
  }
  return [...ids].sort();
}

function TsunaguProvider(propertiesPanel) {
  propertiesPanel.registerProvider(500, this);
}
TsunaguProvider.$inject = ["propertiesPanel"];
TsunaguProvider.prototype.getGroups = function (element) {
  return (groups) => {
    const b = bo(element);
    const entries = [];
    const add = (id, component, isEdited) => entries.push({ id, element, component, isEdited });
    if (is(b, "bpmn:UserTask") || is(b, "bpmn:ManualTask")) {
      add("tsunagu-form", FormEntry, isSelectEntryEdited);
      add("tsunagu-due-in", DueInEntry, isTextFieldEntryEdited);
      add("tsunagu-instructions", InstructionsEntry, isTextAreaEntryEdited);
    }
    if (is(b, "bpmn:Lane")) add("tsunagu-lane", LaneEntry, isSelectEntryEdited);
    if (is(b, "bpmn:Event") && timerDefinition(element)) {
      add("tsunagu-timer-kind", TimerKindEntry, isSelectEntryEdited);
      add("tsunagu-timer", TimerExpressionEntry, isTextFieldEntryEdited);
    }
    if (is(b, "bpmn:SequenceFlow") && b.sourceRef && (is(b.sourceRef, "bpmn:ExclusiveGateway")
        || is(b.sourceRef, "bpmn:InclusiveGateway"))) {
      add("tsunagu-condition", ConditionEntry, isTextFieldEntryEdited);
    }
    if (is(b, "bpmn:BusinessRuleTask")) add("tsunagu-decision", DecisionEntry, isTextFieldEntryEdited);
    if (entries.length) groups.splice(1, 0, { id: "tsunagu", label: M.md_engine_group, entries });
    return groups;
  };
};

// ------------------------------------------------------------------ modeler, viewer, dmn

const modeler = new BpmnModeler({
  container: "#canvas",
  propertiesPanel: { parent: "#properties" },
  additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, lintModule,
    { __init__: ["tsunaguProvider"], tsunaguProvider: ["type", TsunaguProvider] }],
  moddleExtensions: { spiffworkflow: spiffDescriptor },
  linting: { bpmnlint: lintConfig, active: true },
});
const dmnModeler = new DmnModeler({ container: "#dmn-canvas" });

modeler.on("linting.completed", ({ issues }) => {
  state.lintIssues = issues || {};
  renderFindings();
});

let serverFindings = { errors: [], warnings: [] };

function say(el, text, kind = "info") {
  el.textContent = text;
  el.dataset.kind = kind;
}

function selectElement(id) {
  const registry = modeler.get("elementRegistry");
  const element = registry.get(id);
  if (!element) return;
  modeler.get("selection").select(element);
  modeler.get("canvas").scrollToElement(element);
  $("canvas").focus();
}

function findingItem(list, id, text, kind) {
  const li = document.createElement("li");
  li.className = `finding finding--${kind}`;
  const label = document.createElement("span");
  label.className = "finding__kind";
  label.textContent = kind === "error" ? M.md_error : M.md_warning;
  li.append(label, " ");
  if (id && modeler.get("elementRegistry").get(id)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "button button--link";
    button.textContent = id;
    button.addEventListener("click", () => selectElement(id));
    li.append(button, ": ");
  } else if (id) {
    li.append(`${id}: `);
  }
  li.append(text);
  list.append(li);
}

function renderFindings() {
  const list = $("findings");
  list.replaceChildren();
  for (const e of serverFindings.errors) findingItem(list, e.element, e.message, "error");
  for (const w of serverFindings.warnings) findingItem(list, w.element, w.message, "warning");
  for (const [id, reports] of Object.entries(state.lintIssues)) {
    for (const r of reports) {
      findingItem(list, id, `${r.message} (bpmnlint ${r.rule})`, r.category === "error" ? "error" : "warning");
    }
  }
  const count = list.children.length;
  say($("findings-summary"), count ? fmt(M.md_findings, { n: count }) : M.md_no_findings, count ? "warning" : "ok");
}

// ------------------------------------------------------------------ server calls

async function call(method, url, body, asText = false) {
  const headers = { "X-CSRF-Token": DATA.csrf, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (asText && response.ok) return response.text();
  let payload = null;
  try { payload = await response.json(); } catch { payload = null; }
  if (!response.ok) {
    const error = new Error((payload && payload.error && payload.error.message) || `HTTP ${response.status}`);
    error.status = response.status;
    error.fields = payload && payload.error && payload.error.fields;
    throw error;
  }
  return payload;
}

const url = (template, values) => template.replace(/\{(\w+)\}/g, (_, k) => encodeURIComponent(values[k]));

async function currentXml() {
  const { xml } = await modeler.saveXML({ format: true });
  return xml;
}

async function currentDmn() {
  if (state.dmnName && dmnModeler.getActiveViewer()) {
    const { xml } = await dmnModeler.saveXML({ format: true });
    state.dmn[state.dmnName] = xml;
  }
  return { ...state.dmn };
}

function processIdOf() {
  const definitions = modeler.getDefinitions();
  const processes = (definitions.rootElements || []).filter((e) => is(e, "bpmn:Process"));
  const chosen = processes.find((p) => p.isExecutable) || processes[0];
  return chosen ? chosen.id : null;
}

// ------------------------------------------------------------------ opening

function setEditing(editing) {
  for (const id of ["save-draft", "validate", "test-run", "deploy", "discard-draft"]) $(id).disabled = !editing;
  $("editor").hidden = !editing;
  $("readonly").hidden = editing;
}

async function openVersion(key, version, readOnly) {
  const status = $("editor-status");
  try {
    const xml = await call("GET", url(DATA.urls.bpmn, { key, version }), undefined, true);
    const entry = DATA.processes.find((p) => p.key === key);
    const info = entry && entry.versions.find((v) => v.version === version);
    state.dmn = {};
    for (const name of (info && info.dmn) || []) {
      state.dmn[name] = await call("GET", url(DATA.urls.dmn, { key, version, name }), undefined, true);
    }
    if (readOnly) {
      setEditing(false);
      $("readonly").hidden = false;  // shown before drawing: a hidden canvas has no size to fit
      await readonlyViewer.importXML(xml);
      readonlyViewer.get("canvas").zoom("fit-viewport");
      say($("readonly-status"), fmt(M.md_opened_readonly, { key, version }));
      $("readonly").focus();
      return;
    }
    setEditing(true);
    await modeler.importXML(xml);
    modeler.get("canvas").zoom("fit-viewport");
    Object.assign(state, { key, version, opened: key });
    await loadDmn();
    say(status, fmt(M.md_opened, { key, version }));
    $("editor-heading").focus();
  } catch (error) {
    say(status, fmt(M.md_open_failed, { message: error.message }), "error");
  }
}

async function openDraft(key) {
  const status = $("editor-status");
  try {
    const draft = await call("GET", url(DATA.urls.draft, { key }));
    setEditing(true);
    await modeler.importXML(draft.bpmn);
    modeler.get("canvas").zoom("fit-viewport");
    Object.assign(state, { key, version: draft.base_version, opened: key, dmn: draft.dmn || {} });
    await loadDmn();
    say(status, fmt(M.md_opened_draft, { key, version: draft.base_version || "—" }));
    $("editor-heading").focus();
  } catch (error) {
    say(status, error.status === 404 ? M.md_no_draft : fmt(M.md_open_failed, { message: error.message }),
      error.status === 404 ? "info" : "error");
  }
}

const NEW_PROCESS = (id) => `<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" xmlns:di="http://www.omg.org/spec/DD/20100524/DI" xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="Definitions_${id}" targetNamespace="https://tsunagu.example/bpmn/${id}">
  <bpmn:collaboration id="Collaboration_${id}"><bpmn:participant id="Participant_${id}" name="${M.md_new_name}" processRef="${id}" /></bpmn:collaboration>
  <bpmn:process id="${id}" name="${M.md_new_name}" isExecutable="true">
    <bpmn:laneSet id="LaneSet_${id}"><bpmn:lane id="Lane_${id}" name="${DATA.lanes.length ? DATA.lanes[0].lane : ""}"><bpmn:flowNodeRef>start</bpmn:flowNodeRef></bpmn:lane></bpmn:laneSet>
    <bpmn:startEvent id="start" name="${M.md_new_start}" />
  </bpmn:process>
  <bpmndi:BPMNDiagram id="BPMNDiagram_${id}"><bpmndi:BPMNPlane id="BPMNPlane_${id}" bpmnElement="Collaboration_${id}">
    <bpmndi:BPMNShape id="Participant_${id}_di" bpmnElement="Participant_${id}" isHorizontal="true"><dc:Bounds x="120" y="80" width="700" height="200" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="Lane_${id}_di" bpmnElement="Lane_${id}" isHorizontal="true"><dc:Bounds x="150" y="80" width="670" height="200" /></bpmndi:BPMNShape>
    <bpmndi:BPMNShape id="start_di" bpmnElement="start"><dc:Bounds x="212" y="162" width="36" height="36" /></bpmndi:BPMNShape>
  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>
</bpmn:definitions>`;

async function newProcess() {
  const id = ($("new-key").value || "").trim();
  if (!/^[A-Za-z_][A-Za-z0-9_.-]{0,99}$/.test(id)) {
    say($("new-status"), M.md_new_key_invalid, "error");
    $("new-key").setAttribute("aria-invalid", "true");
    $("new-key").focus();
    return;
  }
  $("new-key").removeAttribute("aria-invalid");
  if (DATA.processes.some((p) => p.key === id)) {
    say($("new-status"), fmt(M.md_new_key_taken, { key: id }), "error");
    return;
  }
  setEditing(true);
  await modeler.importXML(NEW_PROCESS(id));
  Object.assign(state, { key: id, version: null, opened: null, dmn: {} });
  await loadDmn();
  say($("new-status"), "");
  say($("editor-status"), fmt(M.md_opened_new, { key: id }));
  $("editor-heading").focus();
}

async function loadDmn() {
  const names = Object.keys(state.dmn);
  state.dmnName = names[0] || null;
  $("dmn-section").hidden = !state.dmnName;
  if (state.dmnName) {
    await dmnModeler.importXML(state.dmn[state.dmnName]);
    const table = dmnModeler.getViews().find((v) => v.type === "decisionTable");
    if (table) await dmnModeler.open(table);
    $("dmn-name").textContent = state.dmnName;
  }
}

// ------------------------------------------------------------------ actions

async function saveDraft() {
  try {
    await call("PUT", url(DATA.urls.draft, { key: processIdOf() || state.key }),
      { bpmn: await currentXml(), dmn: await currentDmn(), base_version: state.version || null });
    say($("editor-status"), fmt(M.md_draft_saved, { key: processIdOf() || state.key }), "ok");
  } catch (error) {
    say($("editor-status"), fmt(M.md_failed, { message: error.message }), "error");
  }
}

async function discardDraft() {
  try {
    await call("DELETE", url(DATA.urls.draft, { key: state.key }));
    say($("editor-status"), M.md_draft_discarded, "ok");
  } catch (error) {
    say($("editor-status"), error.status === 404 ? M.md_no_draft : fmt(M.md_failed, { message: error.message }),
      "error");
  }
}

async function validate() {
  say($("editor-status"), M.md_working);
  try {
    serverFindings = await call("POST", DATA.urls.validate,
      { bpmn: await currentXml(), dmn: await currentDmn(), forms: state.forms });
    renderFindings();
    say($("editor-status"), serverFindings.errors.length ? M.md_validate_errors : M.md_validate_ok,
      serverFindings.errors.length ? "error" : "ok");
  } catch (error) {
    serverFindings = { errors: [{ element: null, message: error.message }], warnings: [] };
    renderFindings();
    say($("editor-status"), fmt(M.md_failed, { message: error.message }), "error");
  }
  $("findings-summary").focus();
}

const MARKERS = ["tsunagu-path", "tsunagu-stop", "tsunagu-failed"];

function clearMarkers(viewer) {
  const canvas = viewer.get("canvas");
  for (const element of viewer.get("elementRegistry").getAll()) {
    for (const m of [...MARKERS, "diff-added", "diff-removed", "diff-changed"]) canvas.removeMarker(element, m);
  }
}

async function testRun() {
  const out = $("run-result");
  let answers;
  try {
    answers = JSON.parse($("answers").value || "{}");
    $("answers").removeAttribute("aria-invalid");
  } catch (error) {
    $("answers").setAttribute("aria-invalid", "true");
    say(out, fmt(M.md_answers_invalid, { message: error.message }), "error");
    out.focus();
    return;
  }
  say(out, M.md_working);
  try {
    const result = await call("POST", DATA.urls.testRun,
      { bpmn: await currentXml(), answers, dmn: await currentDmn(), forms: state.forms });
    clearMarkers(modeler);
    const canvas = modeler.get("canvas");
    const registry = modeler.get("elementRegistry");
    const mark = (id, marker) => { if (registry.get(id)) canvas.addMarker(id, marker); };
    result.path.forEach((id) => mark(id, "tsunagu-path"));
    result.waiting.forEach((w) => mark(w.element, "tsunagu-stop"));
    if (result.error && result.error.element) mark(result.error.element, "tsunagu-failed");
    const path = $("run-path");
    path.replaceChildren(...result.path.map((id) => {
      const li = document.createElement("li");
      const el = registry.get(id);
      li.textContent = el && el.businessObject.name ? `${el.businessObject.name} (${id})` : id;
      return li;
    }));
    let text = M[`md_run_${result.status}`];
    if (result.waiting.length) text += " " + fmt(M.md_run_at, { ids: result.waiting.map((w) => w.element).join(", ") });
    if (result.error) {
      text += " " + fmt(M.md_run_error, { element: result.error.element || "—", message: result.error.message });
      if (result.error.fields) text += " " + Object.entries(result.error.fields).map(([k, v]) => `${k}: ${v}`).join("; ");
    }
    say(out, text, result.status === "error" ? "error" : "ok");
  } catch (error) {
    const element = error.fields ? Object.keys(error.fields)[0] : null;
    if (element) {
      clearMarkers(modeler);
      if (modeler.get("elementRegistry").get(element)) modeler.get("canvas").addMarker(element, "tsunagu-failed");
    }
    say(out, fmt(M.md_run_refused, { element: element || "—", message: error.message }), "error");
  }
  out.focus();
}

async function deploy() {
  const key = processIdOf();
  let overwrite = false;
  if (key !== state.opened && DATA.processes.some((p) => p.key === key)) {
    if (!window.confirm(fmt(M.md_confirm_overwrite, { key }))) return;
    overwrite = true;
  }
  say($("editor-status"), M.md_working);
  try {
    const result = await call("POST", DATA.urls.deploy, { bpmn: await currentXml(), dmn: await currentDmn(),
      opened: state.opened, overwrite, comment: $("deploy-comment").value, forms: state.forms });
    await refreshCatalogue();
    Object.assign(state, { key: result.process_key, version: result.version, opened: result.process_key });
    say($("editor-status"), fmt(result.created ? M.md_deployed : M.md_deployed_same,
      { key: result.process_key, version: result.version }), "ok");
  } catch (error) {
    if (error.fields) serverFindings = { errors: Object.entries(error.fields).map(([element, message]) =>
      ({ element: element === "process_key" ? null : element, message })), warnings: [] };
    renderFindings();
    say($("editor-status"), fmt(M.md_deploy_failed, { message: error.message }), "error");
  }
  $("editor-status").focus();
}

async function refreshCatalogue() {
  DATA.processes = await call("GET", DATA.urls.processes);
  renderCatalogue();
}

// ------------------------------------------------------------------ process list

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

function renderCatalogue() {
  const body = $("process-rows");
  body.replaceChildren();
  for (const p of DATA.processes) {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = p.name;
    const key = document.createElement("td");
    key.textContent = p.key;
    const latest = document.createElement("td");
    latest.textContent = `v${p.latest_version}`;
    const actions = document.createElement("td");
    actions.className = "modeler-actions";
    const select = document.createElement("select");
    select.id = `versions-${p.key}`;
    const label = document.createElement("label");
    label.htmlFor = select.id;
    label.className = "visually-hidden";
    label.textContent = fmt(M.md_version_of, { name: p.name });
    for (const v of p.versions) {
      select.append(option(v.version,
        `v${v.version} ${v.created_at.slice(0, 10)} ${v.author || ""} ${v.comment ? `「${v.comment}」` : ""}`.trim()));
    }
    const button = (text, onClick, aria) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "button button--secondary";
      b.textContent = text;
      if (aria) b.setAttribute("aria-label", aria);
      b.addEventListener("click", onClick);
      return b;
    };
    const download = document.createElement("a");
    const updateDownload = () => {
      download.href = `${url(DATA.urls.bpmn, { key: p.key, version: select.value })}?download=1`;
      download.textContent = `.bpmn (v${select.value})`;
      download.setAttribute("aria-label", fmt(M.md_download_of, { name: p.name, version: select.value }));
    };
    select.addEventListener("change", updateDownload);
    updateDownload();
    actions.append(
      button(M.md_open_latest, () => openVersion(p.key, p.latest_version, false), fmt(M.md_open_latest_of, { name: p.name })),
      button(M.md_open_draft, () => openDraft(p.key), fmt(M.md_open_draft_of, { name: p.name })),
      label, select,
      button(M.md_open_readonly, () => openVersion(p.key, Number(select.value), true),
        fmt(M.md_open_readonly_of, { name: p.name })),
      download,
    );
    for (const dmn of (p.versions[0] && p.versions[0].dmn) || []) {
      const a = document.createElement("a");
      a.href = `${url(DATA.urls.dmn, { key: p.key, version: p.latest_version, name: dmn })}?download=1`;
      a.textContent = dmn;
      actions.append(" ", a);
    }
    row.append(name, key, latest, actions);
    body.append(row);
  }
  const diffKey = $("diff-process");
  const chosen = diffKey.value;
  diffKey.replaceChildren(...DATA.processes.map((p) => option(p.key, `${p.name} (${p.key})`)));
  if (chosen) diffKey.value = chosen;
  renderDiffVersions();
}

// ------------------------------------------------------------------ diff

const readonlyViewer = new NavigatedViewer({ container: "#readonly-canvas" });
const diffFrom = new NavigatedViewer({ container: "#diff-from-canvas" });
const diffTo = new NavigatedViewer({ container: "#diff-to-canvas" });

function renderDiffVersions() {
  const p = DATA.processes.find((x) => x.key === $("diff-process").value) || DATA.processes[0];
  const versions = p ? p.versions.map((v) => option(v.version, `v${v.version}`)) : [];
  $("diff-from").replaceChildren(...versions.map((o) => o.cloneNode(true)));
  $("diff-to").replaceChildren(...versions);
  if (p && p.versions.length > 1) $("diff-from").value = String(p.versions[1].version);
}

async function showDiff() {
  const key = $("diff-process").value;
  const from = Number($("diff-from").value);
  const to = Number($("diff-to").value);
  const out = $("diff-result");
  try {
    const [a, b] = await Promise.all([from, to].map((version) => call("GET", url(DATA.urls.bpmn, { key, version }),
      undefined, true)));
    const moddle = new BpmnModdle({ spiffworkflow: spiffDescriptor });
    const [da, db] = await Promise.all([moddle.fromXML(a), moddle.fromXML(b)]);
    const changes = bpmnDiff(da.rootElement, db.rootElement);
    $("diff-view").hidden = false;  // shown before drawing: a hidden canvas has no size to fit
    await diffFrom.importXML(a);
    await diffTo.importXML(b);
    for (const viewer of [diffFrom, diffTo]) viewer.get("canvas").zoom("fit-viewport");
    const added = Object.keys(changes._added);
    const removed = Object.keys(changes._removed);
    const changed = [...new Set([...Object.keys(changes._changed), ...Object.keys(changes._layoutChanged)])];
    const mark = (viewer, ids, marker) => {
      const registry = viewer.get("elementRegistry");
      ids.forEach((id) => { if (registry.get(id)) viewer.get("canvas").addMarker(id, marker); });
    };
    mark(diffTo, added, "diff-added");
    mark(diffFrom, removed, "diff-removed");
    mark(diffFrom, changed, "diff-changed");
    mark(diffTo, changed, "diff-changed");
    const lists = [["diff-added-list", added], ["diff-removed-list", removed], ["diff-changed-list", changed]];
    for (const [id, ids] of lists) {
      $(id).replaceChildren(...(ids.length ? ids : [M.md_none]).map((x) => {
        const li = document.createElement("li");
        li.textContent = x;
        return li;
      }));
    }
    say(out, fmt(M.md_diff_summary, { from, to, added: added.length, removed: removed.length, changed: changed.length }),
      "ok");
  } catch (error) {
    say(out, fmt(M.md_failed, { message: error.message }), "error");
  }
  out.focus();
}

// ------------------------------------------------------------------ migration

async function previewMigration() {
  const key = $("diff-process").value;
  const from = Number($("diff-from").value);
  const to = Number($("diff-to").value);
  const out = $("migrate-result");
  try {
    const result = await call("GET", `${url(DATA.urls.migration, { key })}?from=${from}&to=${to}`);
    const item = (c, text) => {
      const li = document.createElement("li");
      li.textContent = text ? `${c.number}: ${text}` : c.number;
      return li;
    };
    $("movable-list").replaceChildren(...(result.movable.length ? result.movable.map((c) => item(c)) : [item({ number: M.md_none })]));
    $("blocked-list").replaceChildren(...(result.blocked.length ? result.blocked.map((c) => item(c, c.reason))
      : [item({ number: M.md_none })]));
    $("migrate-run").disabled = !result.movable.length;
    state.migration = { key, from, to };
    say(out, fmt(M.md_migrate_summary, { from, to, movable: result.movable.length, blocked: result.blocked.length }), "ok");
  } catch (error) {
    say(out, fmt(M.md_failed, { message: error.message }), "error");
  }
  out.focus();
}

async function runMigration() {
  const out = $("migrate-result");
  const { key, from, to } = state.migration || {};
  if (!key) return;
  say(out, M.md_working);
  try {
    const result = await call("POST", url(DATA.urls.migration, { key }), { from, to });
    say(out, fmt(M.md_migrated, { migrated: result.migrated.length, failed: result.failed.length }),
      result.failed.length ? "error" : "ok");
    $("migrate-run").disabled = true;
  } catch (error) {
    say(out, fmt(M.md_failed, { message: error.message }), "error");
  }
  out.focus();
}

// ------------------------------------------------------------------ forms

let previewTimer = null;

function renderFormChoices() {
  const select = $("form-key");
  const chosen = select.value;
  const keys = new Set([...Object.keys(DATA.forms), ...Object.keys(state.forms)]);
  select.replaceChildren(...[...keys].sort().map((k) => option(k, k)));
  if (chosen) select.value = chosen;
}

function loadForm() {
  const key = $("form-key").value;
  const schema = state.forms[key] || (DATA.forms[key] || {}).schema || {};
  $("form-schema").value = JSON.stringify(schema, null, 2);
  preview();
}

function preview() {
  clearTimeout(previewTimer);
  previewTimer = setTimeout(async () => {
    const out = $("form-status");
    let schema;
    try {
      schema = JSON.parse($("form-schema").value);
      $("form-schema").removeAttribute("aria-invalid");
    } catch (error) {
      $("form-schema").setAttribute("aria-invalid", "true");
      say(out, fmt(M.md_schema_not_json, { message: error.message }), "error");
      return;
    }
    try {
      const result = await call("POST", DATA.urls.preview, { schema });
      $("form-preview").innerHTML = result.html;  // rendered and escaped by the server's form template
      say(out, M.md_preview_ok, "ok");
    } catch (error) {
      $("form-schema").setAttribute("aria-invalid", "true");
      say(out, fmt(M.md_failed, { message: error.message }), "error");
    }
  }, 300);
}

function useForm() {
  try {
    const key = ($("form-new-key").value || "").trim() || $("form-key").value;
    if (!/^[a-z][a-z0-9_]{0,63}$/.test(key)) {
      say($("form-status"), M.md_form_key_invalid, "error");
      $("form-new-key").focus();
      return;
    }
    state.forms[key] = JSON.parse($("form-schema").value);
    renderFormChoices();
    $("form-key").value = key;
    $("form-new-key").value = "";
    say($("form-status"), fmt(M.md_form_used, { key }), "ok");
  } catch (error) {
    say($("form-status"), fmt(M.md_schema_not_json, { message: error.message }), "error");
  }
}

async function saveForm() {
  const out = $("form-status");
  const key = ($("form-new-key").value || "").trim() || $("form-key").value;
  let schema;
  try {
    schema = JSON.parse($("form-schema").value);
  } catch (error) {
    say(out, fmt(M.md_schema_not_json, { message: error.message }), "error");
    return;
  }
  try {
    const result = await call("PUT", url(DATA.urls.form, { key }), { schema });
    DATA.forms[key] = { schema };
    delete state.forms[key];
    renderFormChoices();
    $("form-key").value = key;
    $("form-new-key").value = "";
    say(out, fmt(result.created ? M.md_form_saved : M.md_form_unchanged, { key, version: result.version }), "ok");
  } catch (error) {
    const where = error.fields ? " " + Object.entries(error.fields).map(([k, v]) => `${k}: ${v}`).join("; ") : "";
    say(out, fmt(M.md_failed, { message: error.message + where }), "error");
  }
}

function downloadForm() {
  const key = $("form-key").value || "form";
  const blob = new Blob([$("form-schema").value], { type: "application/json" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${key}.json`;
  a.click();
  URL.revokeObjectURL(a.href);
}

// ------------------------------------------------------------------ wiring

async function downloadCurrent() {
  const blob = new Blob([await currentXml()], { type: "application/xml" });
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = `${processIdOf() || "process"}.bpmn`;
  a.click();
  URL.revokeObjectURL(a.href);
}

$("new-process").addEventListener("click", newProcess);
$("save-draft").addEventListener("click", saveDraft);
$("discard-draft").addEventListener("click", discardDraft);
$("validate").addEventListener("click", validate);
$("test-run").addEventListener("click", testRun);
$("deploy").addEventListener("click", deploy);
$("download-current").addEventListener("click", downloadCurrent);
$("diff-process").addEventListener("change", renderDiffVersions);
$("diff-show").addEventListener("click", showDiff);
$("form-key").addEventListener("change", loadForm);
$("form-schema").addEventListener("input", preview);
$("form-use").addEventListener("click", useForm);
$("form-download").addEventListener("click", downloadForm);
$("form-save").addEventListener("click", saveForm);
$("migrate-preview").addEventListener("click", previewMigration);
$("migrate-run").addEventListener("click", runMigration);

// bpmn-js draws its canvas as an SVG without a name; give the regions names screen readers announce.
for (const [id, name] of [["canvas", M.md_canvas], ["readonly-canvas", M.md_canvas_readonly],
  ["diff-from-canvas", M.md_diff_from], ["diff-to-canvas", M.md_diff_to], ["dmn-canvas", M.md_dmn]]) {
  const el = $(id);
  el.setAttribute("role", "region");
  el.setAttribute("aria-label", name);
  el.tabIndex = 0;
}

renderCatalogue();
renderFormChoices();
loadForm();
setEditing(false);
$("readonly").hidden = true;
document.body.dataset.modelerReady = "true";
window.tsunaguModeler = { modeler, state, openVersion, selectElement };
const wanted = new URLSearchParams(window.location.search).get("open");
if (wanted && DATA.processes.some((p) => p.key === wanted)) {
  const p = DATA.processes.find((x) => x.key === wanted);
  openVersion(p.key, p.latest_version, false);
}
