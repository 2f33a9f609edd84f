// The dashboard's chart of token-test outcomes per day; its figures come from the page's json_script element.
(function () {
  const source = document.getElementById("health-chart-data");
  const canvas = document.getElementById("health-chart");
  if (!source || !canvas || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  new Chart(canvas, {
    type: "bar",
    data: {labels: data.labels, datasets: [
      {label: "verified", data: data.verified, backgroundColor: "#16a34a"},
      {label: "not verified", data: data.failed, backgroundColor: "#dc2626"}]},
    options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true, ticks: {precision: 0}}}}
  });
})();
