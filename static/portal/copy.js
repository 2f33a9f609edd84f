// Buttons with data-copy="ELEMENT-ID" copy that field's value to the clipboard.
document.querySelectorAll("[data-copy]").forEach(function (button) {
  button.addEventListener("click", function () {
    const field = document.getElementById(button.dataset.copy);
    field.select();
    navigator.clipboard.writeText(field.value).then(function () { button.textContent = "Copied"; },
      function () { document.execCommand("copy"); button.textContent = "Copied"; });
  });
});
