// "Copy link" buttons: a button with data-copy="ID" copies the value of the input with
// that id. Without script the button stays hidden and the link is selectable text.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var input = document.getElementById(button.getAttribute("data-copy"));
    var status = document.getElementById("copy-status");
    if (!input) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var said = function (text) { if (status) { status.textContent = text; } };
      input.select();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(
          function () { said("Link copied."); },
          function () { said("Press Ctrl+C (or Cmd+C) to copy the selected link."); }
        );
      } else {
        said(document.execCommand("copy") ? "Link copied." : "Press Ctrl+C (or Cmd+C) to copy the selected link.");
      }
    });
  });
});
