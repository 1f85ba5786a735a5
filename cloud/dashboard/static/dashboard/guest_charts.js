// An instance's CPU, memory, disk and network charts (cloud/dashboard/guest_charts.py): the kept
// history when the page opens, then one point each time the instance's host reports it, pushed
// over /ws/guest-stats/. Nothing is polled.
(function () {
  "use strict";
  const box = document.querySelector("[data-guest-stats]");
  if (!box || !window.Chart || !("WebSocket" in window)) return;
  const uuid = box.dataset.guestStats;
  const note = box.querySelector("[data-guest-stats-note]");
  const KEEP = 360; // points on screen at most
  const bytes = (v) => {
    const units = ["B", "KiB", "MiB", "GiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return (Math.round(v * 10) / 10) + " " + units[i];
  };
  const specs = {
    cpu: { sets: [["CPU %", "cpu_percent", "#2a5ca8"]], max: 100, tick: (v) => v + "%" },
    memory: { sets: [["used", "memory_used_mib", "#2a5ca8"], ["maximum", "memory_max_mib", "#9aa5b8"]],
              tick: (v) => v + " MiB" },
    disk: { sets: [["read/s", "disk_read_bps", "#2a5ca8"], ["write/s", "disk_write_bps", "#d08a00"]],
            tick: bytes },
    network: { sets: [["received/s", "net_rx_bps", "#2a5ca8"], ["sent/s", "net_tx_bps", "#d08a00"]],
               tick: bytes },
  };
  const charts = {};
  box.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const spec = specs[canvas.dataset.chart];
    charts[canvas.dataset.chart] = { spec, chart: new window.Chart(canvas, {
      type: "line",
      data: { labels: [], datasets: spec.sets.map(([label, , color]) => ({
        label, data: [], borderColor: color, backgroundColor: color, pointRadius: 0, borderWidth: 2,
        spanGaps: false, tension: 0.2 })) },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: spec.max, ticks: { callback: spec.tick } },
                  x: { ticks: { maxTicksLimit: 6 } } },
        plugins: { legend: { display: spec.sets.length > 1 } },
      },
    }) };
  });
  const label = (at) => new Date(at * 1000).toLocaleTimeString();
  function add(points) {
    if (!points.length) return;
    if (note) note.hidden = true;
    box.dataset.points = String(Number(box.dataset.points || 0) + points.length);
    Object.values(charts).forEach(({ spec, chart }) => {
      points.forEach((p) => {
        chart.data.labels.push(label(p.at));
        spec.sets.forEach(([, key], i) => chart.data.datasets[i].data.push(p[key]));
      });
      const extra = chart.data.labels.length - KEEP;
      if (extra > 0) {
        chart.data.labels.splice(0, extra);
        chart.data.datasets.forEach((d) => d.data.splice(0, extra));
      }
      chart.update("none");
    });
  }
  let delay = 1000;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/ws/guest-stats/?instance=" +
                                 encodeURIComponent(uuid));
    socket.onopen = () => { delay = 1000; };
    socket.onmessage = (event) => {
      const m = JSON.parse(event.data);
      if (m.uuid !== uuid) return;
      if (m.type === "history") {
        Object.values(charts).forEach(({ chart }) => {
          chart.data.labels = [];
          chart.data.datasets.forEach((d) => { d.data = []; });
        });
        box.dataset.points = "0";
        add(m.points);
      } else if (m.type === "point") add([m.point]);
    };
    socket.onclose = (event) => {
      if (event.code >= 4400 && event.code < 4500) return; // signed out, not allowed, gone
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    };
  }
  connect();
})();
