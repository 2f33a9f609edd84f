// The tenants page: "select all on this page" ticks every row's checkbox (rows are swapped in by htmx, so the
// listener sits on the document).
document.addEventListener("change", function (event) {
  if (event.target.id !== "select-page") { return; }
  document.querySelectorAll("input.select-row").forEach(function (box) { box.checked = event.target.checked; });
});
