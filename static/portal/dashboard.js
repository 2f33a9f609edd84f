// The dashboard's charts of token-test outcomes (by hour, by day): each canvas names, in data-chart-source, the
// json_script element holding its labels and one series per outcome. The data table behind each chart is in the page.
(function () {
  if (typeof Chart === "undefined") return;
  const colours = {
    verified: "#16a34a", no_role: "#ca8a04", propagating: "#0891b2", transient: "#6b7280",
    not_consented: "#dc2626", misconfigured: "#b91c1c", tenant_not_found: "#9f1239", blocked: "#7c2d12",
    error: "#7f1d1d"
  };
  document.querySelectorAll("canvas[data-chart-source]").forEach(function (canvas) {
    const source = document.getElementById(canvas.dataset.chartSource);
    if (!source) return;
    const data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (set) {
          return {label: set.label, data: set.data, backgroundColor: colours[set.outcome] || "#4b5563"};
        })
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}
      }
    });
  });
})();
