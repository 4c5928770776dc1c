document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var search = document.createElement("input");
  search.type = "search"; search.placeholder = "Search this table"; search.className = "table-search";
  search.setAttribute("aria-label", "Search " + (table.caption ? table.caption.textContent : "table"));
  table.parentNode.insertBefore(search, table);
  search.addEventListener("input", function () {
    var q = search.value.toLowerCase();
    rows.forEach(function (r) { r.hidden = q !== "" && r.textContent.toLowerCase().indexOf(q) < 0; });
  });
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
    th.tabIndex = 0; th.title = "Sort by this column"; th.classList.add("sort");
    var sort = function () {
      var down = th.getAttribute("aria-sort") !== "descending";
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      var key = function (r) {
        var t = r.cells[col].textContent.replace(/\u2212/g, "-").replace(/,/g, "");
        var n = parseFloat(t);
        return isNaN(n) ? t.toLowerCase() : n;
      };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), c = x < y ? -1 : x > y ? 1 : 0;
        return down ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    };
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") { sort(); } });
  });
});
