// Optional: the forms work without it. Disables a form's button while it is submitted.
document.addEventListener("submit", function (event) {
  var button = event.target.querySelector("button[type=submit]");
  if (!button) return;
  window.setTimeout(function () {
    button.disabled = true;
    button.dataset.label = button.textContent;
    if (button.dataset.busy) button.textContent = button.dataset.busy;
  }, 0);
});
// Coming back with the browser's back button must not leave the button disabled.
window.addEventListener("pageshow", function () {
  document.querySelectorAll("button[type=submit][disabled]").forEach(function (button) {
    button.disabled = false;
    if (button.dataset.label) button.textContent = button.dataset.label;
  });
});
