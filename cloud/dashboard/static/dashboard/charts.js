// Usage against quota on the overview: one horizontal bar per resource, in percent of its limit.
(function () {
  "use strict";
  const canvas = document.getElementById("usage-chart");
  const data = document.getElementById("usage-data");
  if (!canvas || !data || !window.Chart) return;
  const rows = JSON.parse(data.textContent);
  const pct = rows.map((r) => (r.unlimited || !r.limit ? 0 : Math.min(100, Math.round((100 * r.used) / r.limit))));
  new window.Chart(canvas, {
    type: "bar",
    data: {
      labels: rows.map((r) => r.label),
      datasets: [{
        label: "% of quota in use",
        data: pct,
        backgroundColor: pct.map((p) => (p >= 90 ? "#b00020" : p >= 70 ? "#d08a00" : "#2a5ca8")),
        borderRadius: 4,
      }],
    },
    options: {
      indexAxis: "y",
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: { x: { min: 0, max: 100, ticks: { callback: (v) => v + "%" } } },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (item) => {
              const r = rows[item.dataIndex];
              const unit = r.unit ? " " + r.unit : "";
              return r.unlimited ? r.used + unit + " used (no limit)" : r.used + " of " + r.limit + unit + " used";
            },
          },
        },
      },
    },
  });
})();
