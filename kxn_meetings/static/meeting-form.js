// "Add another agenda item" and "Add another room" add a row in place, keeping everything typed, where scripts
// run; without scripts the buttons submit the form and the server sends it back with one more row.
"use strict";
(function () {
  function renumber(row, group, index) {
    var pattern = new RegExp("^" + group + "-\\d+-");
    var prefix = group + "-" + index + "-";
    row.querySelectorAll("[id], [name], [for], [aria-describedby]").forEach(function (el) {
      ["id", "name", "for"].forEach(function (attribute) {
        var value = el.getAttribute(attribute);
        if (value) el.setAttribute(attribute, value.replace(pattern, prefix));
      });
      var described = el.getAttribute("aria-describedby");
      if (described) {
        var kept = described.split(/\s+/).filter(function (id) { return !/-error$/.test(id); });
        kept = kept.map(function (id) { return id.replace(pattern, prefix); });
        if (kept.length) el.setAttribute("aria-describedby", kept.join(" "));
        else el.removeAttribute("aria-describedby");
      }
    });
  }

  function blank(row) {
    row.querySelectorAll(".error-message, .agenda-outside").forEach(function (el) { el.remove(); });
    row.querySelectorAll(".has-error").forEach(function (el) { el.classList.remove("has-error"); });
    row.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
    row.querySelectorAll("input, textarea").forEach(function (el) { el.value = ""; });
  }

  document.querySelectorAll("button[data-add]").forEach(function (button) {
    var group = button.dataset.add;
    var list = document.querySelector('[data-repeat="' + group + '"]');
    if (!list) return;
    var max = parseInt(button.dataset.max || "0", 10);
    button.addEventListener("click", function (event) {
      var rows = list.querySelectorAll(":scope > .repeat-row");
      if (!rows.length) return;
      event.preventDefault();
      if (max && rows.length >= max) {
        var note = document.getElementById(group + "-limit-error");
        if (!note) {
          note = document.createElement("p");
          note.className = "error-message";
          note.id = group + "-limit-error";
          note.setAttribute("role", "status");
          button.parentNode.insertBefore(note, button);
        }
        note.textContent = button.dataset.full;
        return;
      }
      var row = rows[rows.length - 1].cloneNode(true);
      blank(row);
      renumber(row, group, rows.length);
      row.querySelector("legend").textContent = list.dataset.legend + " " + (rows.length + 1);
      list.appendChild(row);
      var first = row.querySelector("input, textarea");
      if (first) first.focus();
    });
  });
})();
