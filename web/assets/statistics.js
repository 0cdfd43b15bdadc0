// The statistics page's charts (chart.js, bundled locally): consultations by month and by
// content, and social-resource gaps by kind. The same figures are in the page's table.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Title, Tooltip } from "chart.js";

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Title, Tooltip, Legend);

function bar(id, labels, values, title, colour) {
  const canvas = document.getElementById(id);
  if (!canvas) return;
  new Chart(canvas, {
    type: "bar",
    data: { labels, datasets: [{ label: title, data: values, backgroundColor: colour }] },
    options: {
      responsive: true,
      animation: false,
      plugins: { legend: { display: false }, title: { display: true, text: title } },
      scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
}

function draw() {
  const source = document.getElementById("statistics-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  bar("chart-by-month", data.months, data.by_month, data.labels.by_month, "#1f5fa8");
  bar("chart-by-content", data.content_labels, data.content, data.labels.by_content, "#2e7d4f");
  bar("chart-gaps", data.gap_labels, data.gaps, data.labels.gaps, "#9a4f00");
  document.body.dataset.chartsReady = "true";
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
else draw();
