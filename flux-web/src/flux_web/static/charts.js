// Gantt chart and task durations, drawn with Chart.js from the JSON the page carries.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function timeLabel(ms) {
    var d = new Date(ms);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) + " " +
      pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()) + ":" + pad(d.getUTCSeconds());
  }
  function seconds(value) {
    if (value === null || value === undefined) { return ""; }
    return value < 60 ? value.toFixed(2) + " s" : (value / 60).toFixed(1) + " min";
  }
  function readJson(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  var gantt = readJson("gantt-data");
  var ganttCanvas = document.getElementById("gantt-chart");
  if (gantt && ganttCanvas && gantt.bars.length) {
    var bars = gantt.bars;
    // The run's own time span (a bar chart's value axis would otherwise start at 1970).
    var first = Math.min.apply(null, bars.map(function (b) { return b.start; }));
    var last = Math.max.apply(null, bars.map(function (b) { return Math.max(b.end, b.start + 500); }));
    var margin = Math.max((last - first) * 0.02, 100);
    var chart = new Chart(ganttCanvas, {
      type: "bar",
      data: {
        labels: bars.map(function (b) { return b.task_id; }),
        datasets: [{
          label: "task instances",
          data: bars.map(function (b) { return [b.start, Math.max(b.end, b.start + 500)]; }),
          backgroundColor: bars.map(function (b) { return b.color; }),
          borderSkipped: false, borderRadius: 3, barPercentage: 0.8
        }]
      },
      options: {
        indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: function (ctx) {
            var b = bars[ctx.dataIndex];
            return (b.state || "no state") + ", try " + b.try_number + ": " + timeLabel(b.start) +
              " → " + timeLabel(b.end) + " (" + seconds((b.end - b.start) / 1000) + ")";
          } } }
        },
        scales: { x: { type: "linear", min: first - margin, max: last + margin, beginAtZero: false,
                       ticks: { callback: function (v) { return timeLabel(v).slice(11); } },
                       title: { display: true, text: "time (UTC), from " + timeLabel(first) } } },
        onClick: function (event, elements) {
          if (elements.length) { window.location.href = bars[elements[0].index].url; }
        }
      }
    });
    ganttCanvas.dataset.ready = chart ? "true" : "false";
  }

  var durations = readJson("durations-data");
  var durationsCanvas = document.getElementById("durations-chart");
  if (durations && durationsCanvas && durations.dates.length) {
    var palette = ["#2563eb", "#16a34a", "#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#db2777",
                   "#65a30d", "#ea580c", "#4b5563"];
    new Chart(durationsCanvas, {
      type: "line",
      data: {
        labels: durations.dates.map(function (d) { return d.replace("T", " "); }),
        datasets: durations.series.map(function (s, i) {
          return { label: s.task_id, data: s.values, spanGaps: true, tension: 0.2,
                   borderColor: palette[i % palette.length],
                   backgroundColor: palette[i % palette.length], pointRadius: 3 };
        })
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { tooltip: { callbacks: { label: function (ctx) {
          return ctx.dataset.label + ": " + seconds(ctx.parsed.y);
        } } } },
        scales: { y: { beginAtZero: true, title: { display: true, text: "duration (s)" } },
                  x: { title: { display: true, text: "execution date (UTC)" } } }
      }
    });
    durationsCanvas.dataset.ready = "true";
  }
})();
