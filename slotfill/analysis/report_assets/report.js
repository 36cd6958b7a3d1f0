// slotfill run report: sortable tables and the filters of the wrong-utterance list.
// Inlined into report.html; no libraries, no network.
(function () {
  "use strict";

  // Sort a table by the clicked column: numbers by value (data-v), text alphabetically;
  // a second click reverses the order.
  function sortBy(table, th) {
    var col = Number(th.dataset.col);
    var descending = th.getAttribute("aria-sort") !== "descending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var cell = row.cells[col];
      var raw = cell ? (cell.dataset.v !== undefined ? cell.dataset.v : cell.textContent) : "";
      var n = Number(raw);
      return raw !== "" && !isNaN(n) ? n : String(raw).toLowerCase();
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      var order = (typeof x === "number" && typeof y === "number") ? x - y
        : String(x).localeCompare(String(y));
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.removeAttribute("aria-sort");
    });
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.tHead.addEventListener("click", function (event) {
      var th = event.target.closest("th");
      if (th) { sortBy(table, th); }
    });
  });

  // The wrong utterances: filter by slot type, error kind and words.
  var list = document.getElementById("utterance-list");
  if (!list) { return; }
  var slot = document.getElementById("filter-slot");
  var kind = document.getElementById("filter-kind");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("filter-count");
  var items = Array.prototype.slice.call(list.querySelectorAll("article.utt"));

  function apply() {
    var s = slot.value, k = kind.value, words = text.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (item) {
      var ok = (!s || item.dataset.slots.split(" ").indexOf(s) >= 0) &&
               (!k || item.dataset.kinds.split("|").indexOf(k) >= 0) &&
               (!words || item.dataset.text.toLowerCase().indexOf(words) >= 0);
      item.hidden = !ok;
      shown += ok ? 1 : 0;
    });
    count.textContent = shown.toLocaleString("en") + " of " +
      items.length.toLocaleString("en") + " shown";
  }

  slot.addEventListener("change", apply);
  kind.addEventListener("change", apply);
  text.addEventListener("input", apply);
  apply();
})();
