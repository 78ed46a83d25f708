// Prefloop agreement dashboard: two charts drawn from the JSON the page embeds.
// Data never goes through innerHTML: Chart.js draws labels on a canvas.
(function () {
  "use strict";
  var ACCENT = "#2f5bd3", ACCENT_SOFT = "rgba(47, 91, 211, 0.25)", OK = "#1e7a46", WARN = "#9a6200";

  function readData() {
    var el = document.getElementById("agreement-data");
    if (!el) return null;
    try { return JSON.parse(el.textContent); } catch (e) { return null; }
  }

  function figuresChart(canvas, figures) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: figures.map(function (f) { return f.label; }),
        datasets: [
          {
            label: "95 % interval",
            data: figures.map(function (f) { return f.low === null ? null : [f.low, f.high]; }),
            backgroundColor: ACCENT_SOFT, borderColor: ACCENT, borderWidth: 1,
            barPercentage: 0.4, order: 2,
          },
          {
            type: "line", label: "value", showLine: false, pointRadius: 6,
            pointBackgroundColor: ACCENT, borderColor: ACCENT, order: 1,
            data: figures.map(function (f) { return f.value; }),
          },
        ],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        scales: { y: { min: -1, max: 1, title: { display: true, text: "agreement" } } },
      },
    });
  }

  function labelersChart(canvas, labelers) {
    function series(key) { return labelers.map(function (l) { return l[key]; }); }
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: labelers.map(function (l) { return l.labeler; }),
        datasets: [
          { label: "agreement with consensus", data: series("agreement"), backgroundColor: ACCENT },
          { label: "gold accuracy", data: series("gold_accuracy"), backgroundColor: OK },
          { label: "position bias", data: series("position_bias"), backgroundColor: WARN },
        ],
      },
      options: { maintainAspectRatio: false, animation: false, scales: { y: { min: 0, max: 1 } } },
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var data = readData();
    if (!data || !window.Chart) return;
    var figures = document.getElementById("figures-chart");
    if (figures) figuresChart(figures, data.figures);
    var labelers = document.getElementById("labelers-chart");
    if (labelers && data.labelers.length) labelersChart(labelers, data.labelers);
  });
})();
