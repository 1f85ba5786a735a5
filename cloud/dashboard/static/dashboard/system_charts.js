// The admin System page (cloud/dashboard/system_page.py): fetches /manage/system/data every step
// (the server samples once per step whatever the number of viewers) and redraws its charts.
// These counts change all the time with no event to push, so the page asks on the sampling step.
(function () {
  "use strict";
  const box = document.querySelector("[data-system-charts]");
  if (!box || !window.Chart) return;
  const url = box.dataset.systemCharts;
  const step = Number(box.dataset.step || 5) * 1000;
  const note = box.querySelector("[data-system-note]");
  const PALETTE = ["#2a5ca8", "#d08a00", "#3a9d5d", "#8e44ad", "#b00020", "#16a085", "#7f8c8d"];
  const colour = (i) => PALETTE[i % PALETTE.length];
  const label = (at) => new Date(at * 1000).toLocaleTimeString();
  const charts = {};
  box.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const kind = canvas.dataset.chart;
    const bars = kind === "filters" || kind === "hosts";
    charts[kind] = new window.Chart(canvas, {
      type: bars ? "bar" : "line",
      data: { labels: [], datasets: [] },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        scales: { y: { min: 0, max: kind === "hosts" ? 100 : undefined,
                       ticks: kind === "hosts" ? { callback: (v) => v + "%" } : {} },
                  x: { ticks: { maxTicksLimit: bars ? undefined : 6 } } },
        plugins: { legend: { display: true } },
      },
    });
  });
  const line = (name, data, i, dashed) => ({
    label: name, data, borderColor: colour(i), backgroundColor: colour(i), pointRadius: 0,
    borderWidth: 2, tension: 0.2, borderDash: dashed ? [5, 4] : [], spanGaps: false,
  });
  function draw(chart, labels, datasets) {
    if (!chart) return;
    chart.data.labels = labels;
    chart.data.datasets = datasets;
    chart.update("none");
  }
  const pct = (f) => (f.capacity ? Math.round((1000 * f.used) / f.capacity) / 10 : 0);
  const cell = (f) => f.used + " / " + f.capacity + " (" + f.total + ")";
  let points = []; // kept here: each fetch asks only for the points after the newest one
  function render(data) {
    const newest = points.length ? points[points.length - 1].at : -Infinity;
    points = points.concat(data.points.filter((p) => p.at > newest))
      .filter((p) => p.at > data.at - data.keep_seconds);
    const labels = points.map((p) => label(p.at));
    if (note) note.hidden = points.length > 0;
    draw(charts.boots, labels, [
      line("active", points.map((p) => p.boots_per_minute.active), 2),
      line("failed", points.map((p) => p.boots_per_minute.failed), 4),
      line("placed on a host", points.map((p) => p.boots_per_minute.placed), 0, true),
    ]);
    const now = box.querySelector('[data-now="boots"]');
    if (now && data.now) {
      const b = data.now.boots_per_minute;
      now.textContent = "Now: " + b.active + " active, " + b.failed + " failed, " + b.placed +
        " placed per minute";
    }
    const apis = [...new Set(points.flatMap((p) => Object.keys(p.api)))].sort();
    draw(charts.latency, labels, apis.flatMap((api, i) => [
      line(api + " p50", points.map((p) => (p.api[api] ? p.api[api].p50 : null)), i, false),
      line(api + " p95", points.map((p) => (p.api[api] ? p.api[api].p95 : null)), i, true),
    ]));
    const queues = [...new Set(points.flatMap((p) => Object.keys(p.queues || {})))].sort();
    draw(charts.queues, labels, queues.map((q, i) =>
      line(q, points.map((p) => (p.queues ? p.queues[q] : null)), i)));
    const nvh = data.no_valid_host || { total: {}, recent: {} };
    const filters = Object.keys(nvh.total);
    draw(charts.filters, filters, [
      { label: "since counting began", data: filters.map((f) => nvh.total[f]), backgroundColor: colour(6) },
      { label: "in this history", data: filters.map((f) => nvh.recent[f]), backgroundColor: colour(4) },
    ]);
    const hosts = [...data.hosts, { host: "all hosts", ...data.total }];
    draw(charts.hosts, hosts.map((h) => h.host), [
      { label: "vCPUs", data: hosts.map((h) => pct(h.vcpus)), backgroundColor: colour(0) },
      { label: "RAM", data: hosts.map((h) => pct(h.memory_mb)), backgroundColor: colour(1) },
      { label: "disk", data: hosts.map((h) => pct(h.disk_gb)), backgroundColor: colour(2) },
    ]);
    const rows = box.querySelector("[data-host-rows]");
    rows.replaceChildren(...hosts.map((h) => {
      const tr = document.createElement("tr");
      [h.host, h.status || "", cell(h.vcpus), cell(h.memory_mb), cell(h.disk_gb)].forEach((text, i) => {
        const td = document.createElement(i ? "td" : "th");
        if (!i) td.scope = "row";
        if (i > 1) td.className = "num";
        td.textContent = text;
        tr.appendChild(td);
      });
      return tr;
    }));
    box.dataset.points = String(points.length);
  }
  async function poll() {
    try {
      const since = points.length ? "?since=" + points[points.length - 1].at : "";
      const response = await fetch(url + since, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (response.status >= 400 && response.status < 500) {
        if (note) { note.hidden = false; note.textContent = "Not allowed any more (" + response.status + ")."; }
        return; // signed out or no longer an admin: stop asking
      }
      if (response.ok) render(await response.json());
    } catch (error) {
      // A network hiccup: try again at the next step.
    }
    setTimeout(poll, step);
  }
  poll();
})();
