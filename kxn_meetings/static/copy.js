// Copy buttons: <button data-copy="FIELD-ID" data-copy-status="STATUS-ID" hidden>. Shown only where the browser
// lets a page write to the clipboard; elsewhere the field's text stays there to select and copy by hand.
"use strict";
(function () {
  if (!navigator.clipboard || !window.isSecureContext) return;
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.dataset.copy);
    var status = document.getElementById(button.dataset.copyStatus);
    if (!field || !status) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      // Emptied first, so that a second "Copied" is announced again.
      status.textContent = "";
      navigator.clipboard.writeText(field.value).then(
        function () {
          status.textContent = "Copied";
        },
        function () {
          field.focus();
          field.select();
          status.textContent = "Could not copy: the address is selected, copy it with your keyboard or menu.";
        }
      );
    });
  });
})();
