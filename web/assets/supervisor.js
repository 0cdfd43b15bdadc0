// Supervisors' pages: the dashboard's charts (chart.js) and the heatmap of a process's steps on
// its diagram (the bpmn-js NavigatedViewer), both from data the page embeds as JSON. Every
// number is also in the page's tables; the charts and colours only repeat them.
import {
  BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip,
} from "chart.js";
import NavigatedViewer from "bpmn-js/lib/NavigatedViewer";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const COLOURS = ["#0a4f8f", "#b42318", "#1a6b32", "#a14c00", "#5b3d99", "#4a5568"];

function readJson(id) {
  const el = document.getElementById(id);
  if (!el) { return null; }
  try { return JSON.parse(el.textContent); } catch (e) { return null; }
}

function bar(canvasId, labels, series, stacked) {
  const canvas = document.getElementById(canvasId);
  if (!canvas) { return; }
  new Chart(canvas, {
    type: "bar",
    data: {
      labels,
      datasets: series.map((s, i) => ({ label: s.label, data: s.values, backgroundColor: COLOURS[i % COLOURS.length] })),
    },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: series.length > 1 } },
      scales: { x: { stacked: !!stacked }, y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

function charts() {
  const data = readJson("dashboard-data");
  if (!data) { return; }
  bar("chart-reason", data.reason.labels, [{ label: data.reason.title, values: data.reason.values }]);
  bar("chart-age", data.age.labels, [{ label: data.age.title, values: data.age.values }]);
  bar("chart-workload", data.workload.labels, data.workload.series);
}

function fill(template, key, value) {
  return template.replace("{" + key + "}", String(value));
}

function level(open, max) {
  if (!open) { return 0; }
  const share = open / max;
  return share > 0.66 ? 3 : share > 0.33 ? 2 : 1;
}

function overlay(step, labels, lvl) {
  const link = document.createElement("a");
  link.href = step.href;
  link.className = "heat heat--" + lvl;
  const numbers = [fill(labels.open, "n", step.open), fill(labels.stuck, "n", step.stuck)];
  const times = step.median === null ? [labels.none]
    : [fill(labels.median, "h", step.median.toFixed(1)), fill(labels.p90, "h", step.p90.toFixed(1))];
  const first = document.createElement("span");
  first.textContent = numbers.join(" · ");
  const second = document.createElement("span");
  second.textContent = times.join(" · ");
  link.append(first, document.createElement("br"), second);
  link.setAttribute("aria-label", step.name + ": " + numbers.concat(times).join(", "));
  return link;
}

function heatmap() {
  const el = document.getElementById("diagram");
  const data = readJson("heatmap-data");
  if (!el || !data) { return; }
  const fail = () => { el.dataset.ready = "error"; el.textContent = el.dataset.error || ""; };
  const viewer = new NavigatedViewer({ container: el });
  viewer.importXML(data.xml).then(() => {
    const canvas = viewer.get("canvas");
    const registry = viewer.get("elementRegistry");
    const overlays = viewer.get("overlays");
    const max = Math.max(1, ...data.steps.map((s) => s.open));
    const hrefs = {};
    data.steps.forEach((step) => {
      const element = registry.get(step.step);
      if (!element) { return; }
      const lvl = level(step.open, max);
      canvas.addMarker(step.step, "tsu-heat-" + lvl);
      if (step.stuck) { canvas.addMarker(step.step, "tsu-heat-stuck"); }
      hrefs[step.step] = step.href;
      overlays.add(step.step, { position: { bottom: -4, left: -10 }, html: overlay(step, data.labels, lvl) });
    });
    viewer.get("eventBus").on("element.click", (event) => {
      const href = hrefs[event.element.id];
      if (href) { window.location.assign(href); }
    });
    canvas.zoom("fit-viewport", "auto");
    el.dataset.ready = "true";
  }).catch(fail);
}

charts();
heatmap();
