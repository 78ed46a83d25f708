// Prefloop training runs: the start form shows the fields of the chosen kind; a run page draws
// its curves with Chart.js from GET /api/v1/training-runs/{id}?after_step=N, every 2 s until the
// run is final. Metric names come from the server: only textContent and Chart.js labels, never
// innerHTML.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var FINAL = ["succeeded", "failed", "cancelled"];
  // First matching group wins: "rewards/accuracies" is an accuracy, "policy_loss" a loss.
  var GROUPS = [
    {id: "accuracy", match: /accura/i},
    {id: "kl", match: /(^|[\/_])kl([\/_]|$)/i},
    {id: "entropy", match: /entropy/i},
    {id: "loss", match: /loss/i},
    {id: "reward", match: /(^|[\/_])(rewards?|scores?|margins?)([\/_]|$)/i},
  ];
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

  function showFieldsOfKind(form) {
    var select = form.querySelector("#run-kind");
    if (!select) return;
    form.querySelectorAll("[data-kinds]").forEach(function (el) {
      var fits = el.getAttribute("data-kinds").split(" ").indexOf(select.value) >= 0;
      el.hidden = !fits;
      if (el.tagName === "OPTGROUP") el.disabled = !fits;
    });
  }

  function bindForm(root) {
    var form = root.querySelector ? root.querySelector("#run-form") : null;
    if (!form && root.id === "run-form") form = root;
    if (!form) return;
    showFieldsOfKind(form);
    form.querySelector("#run-kind").addEventListener("change", function () { showFieldsOfKind(form); });
  }

  function groupOf(name) {
    for (var i = 0; i < GROUPS.length; i++) if (GROUPS[i].match.test(name)) return GROUPS[i].id;
    return null;
  }

  function RunCharts(section) {
    this.section = section;
    this.runId = section.getAttribute("data-run-id");
    this.attempt = null;
    this.reset();
  }

  // A new attempt starts its metrics afresh: drop what was drawn.
  RunCharts.prototype.reset = function () {
    var charts = this.charts || {};
    Object.keys(charts).forEach(function (g) { charts[g].destroy(); });
    this.section.querySelectorAll("[data-chart]").forEach(function (el) { el.hidden = true; });
    this.showEmpty(true);
    this.lastStep = null;
    this.points = 0;
    this.charts = {};
    this.series = {};
  };

  RunCharts.prototype.chart = function (group) {
    if (this.charts[group]) return this.charts[group];
    var box = this.section.querySelector('[data-chart="' + group + '"]');
    box.hidden = false;
    this.showEmpty(false);
    this.charts[group] = new window.Chart(box.querySelector("canvas"), {
      type: "line",
      data: {datasets: []},
      options: {
        animation: false, parsing: false, maintainAspectRatio: false,
        scales: {x: {type: "linear", title: {display: true, text: "step"}}},
        plugins: {legend: {position: "bottom"}},
      },
    });
    return this.charts[group];
  };

  RunCharts.prototype.showEmpty = function (empty) {
    var note = document.getElementById("charts-empty");
    if (note) note.hidden = !empty;
  };

  RunCharts.prototype.dataset = function (name) {
    if (this.series[name]) return this.series[name];
    var group = groupOf(name);
    if (!group) return null;
    var chart = this.chart(group);
    var color = COLORS[chart.data.datasets.length % COLORS.length];
    var ds = {label: name, data: [], borderColor: color, backgroundColor: color, pointRadius: 2};
    chart.data.datasets.push(ds);
    this.series[name] = ds;
    return ds;
  };

  RunCharts.prototype.add = function (metrics) {
    var self = this;
    metrics.forEach(function (m) {
      Object.keys(m.values).forEach(function (name) {
        var v = m.values[name];
        if (typeof v !== "number" || !isFinite(v)) return;
        var ds = self.dataset(name);
        if (!ds) return;
        var last = ds.data[ds.data.length - 1];
        if (last && last.x === m.step) { last.y = v; return; }  // the step was fetched before
        ds.data.push({x: m.step, y: v});
        self.points += 1;
      });
      self.lastStep = m.step;
    });
    Object.keys(this.charts).forEach(function (g) { self.charts[g].update("none"); });
    this.section.setAttribute("data-points", String(this.points));
    this.section.setAttribute("data-last-step", this.lastStep === null ? "" : String(this.lastStep));
  };

  RunCharts.prototype.poll = function () {
    var self = this;
    // The last step is fetched again: values logged later at that step (a final evaluation)
    // are merged into it by the worker.
    var url = "/api/v1/training-runs/" + encodeURIComponent(this.runId) +
      (this.lastStep === null ? "" : "?after_step=" + (this.lastStep - 1));
    fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (run) {
        if (self.attempt !== null && run.attempts !== self.attempt) {
          self.attempt = run.attempts;
          self.reset();
          return self.poll();
        }
        self.attempt = run.attempts;
        self.add(run.metrics);
        self.section.setAttribute("data-status", run.status);
        if (FINAL.indexOf(run.status) < 0) setTimeout(function () { self.poll(); }, POLL_MS);
      })
      .catch(function () { setTimeout(function () { self.poll(); }, POLL_MS * 2); });
  };

  document.addEventListener("DOMContentLoaded", function () {
    bindForm(document);
    var section = document.getElementById("run-charts");
    if (section && window.Chart) new RunCharts(section).poll();
  });
  document.addEventListener("htmx:afterSwap", function (e) { bindForm(e.detail.elt); });
})();
