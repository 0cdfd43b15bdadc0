// Tsunagu staff pages: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Move focus to the error summary after a refused submission.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }

  // ISO duration picker: number + unit → P{n}{unit}; typing a number clears the free-text fallback.
  document.querySelectorAll("fieldset.duration").forEach(function (box) {
    var amount = box.querySelector('input[name$="-amount"]');
    var unit = box.querySelector('select[name$="-unit"]');
    var text = box.querySelector(".duration__text input");
    var preview = box.querySelector(".duration__preview");
    if (!amount || !unit) { return; }
    function update(clearText) {
      var n = parseInt(amount.value, 10);
      preview.textContent = n > 0 ? "P" + n + unit.value : "";
      if (clearText && text && n > 0) { text.value = ""; }
    }
    amount.addEventListener("input", function () { update(true); });
    unit.addEventListener("change", function () { update(true); });
    if (text) {
      text.addEventListener("input", function () {
        var m = /^P(\d{1,4})([DWMY])$/i.exec(text.value.trim());
        if (m) { amount.value = m[1]; unit.value = m[2].toUpperCase(); preview.textContent = "P" + m[1] + m[2].toUpperCase(); }
        else if (text.value.trim()) { amount.value = ""; preview.textContent = text.value.trim().toUpperCase(); }
      });
    }
  });

  // Tables of rows (arrays of objects): add and remove rows in place. Fields keep their
  // indexed names (roles-0-group); the server reads the rows in index order and drops empty ones.
  document.querySelectorAll("fieldset.table-field").forEach(function (box) {
    var body = box.querySelector("tbody");
    var template = box.querySelector("template.row-template");
    var add = box.querySelector("button.add-row");
    if (!body || !template) { return; }
    var next = body.querySelectorAll("tr").length;

    function renumber() {
      var rows = body.querySelectorAll("tr");
      rows.forEach(function (row, i) {
        var n = row.querySelector(".rows-table__n");
        if (n) { n.textContent = String(i + 1); }
        var remove = row.querySelector("button.remove-row");
        if (remove) { remove.hidden = rows.length <= 1; }
      });
    }
    function wire(row) {
      var remove = row.querySelector("button.remove-row");
      if (!remove) { return; }
      remove.addEventListener("click", function () {
        var focusTarget = row.previousElementSibling || row.nextElementSibling;
        row.remove();
        renumber();
        var first = focusTarget && focusTarget.querySelector("input, select, textarea");
        if (first) { first.focus(); } else if (add) { add.focus(); }
      });
    }
    body.querySelectorAll("tr").forEach(wire);
    if (add) {
      add.addEventListener("click", function (event) {
        event.preventDefault();
        var html = template.innerHTML.replace(/__index__/g, String(next));
        next += 1;
        var holder = document.createElement("tbody");
        holder.innerHTML = html;
        var row = holder.querySelector("tr");
        body.appendChild(row);
        wire(row);
        renumber();
        var first = row.querySelector("input, select, textarea");
        if (first) { first.focus(); }
      });
    }
    renumber();
  });
})();
