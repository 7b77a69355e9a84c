"""The page's inline stylesheet and script (kept apart from the Python that writes HTML)."""

CSS = """
:root{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#212121;background:#fafafa}
body{margin:0 auto;max-width:1200px;padding:16px 24px}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:.3em 0}
.meta{color:#616161;font-size:.85em}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px 14px;min-width:90px;display:flex;flex-direction:column}
.card .value{font-size:1.4em;font-weight:600}.card .label{font-size:.8em;color:#616161}
#notes{background:#fff8e1;border:1px solid #ffe082;border-radius:6px;padding:4px 12px;margin-top:10px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{margin:0;background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:6px}
.chart svg{max-width:100%;height:auto}
table.data{border-collapse:collapse;width:100%;background:#fff;font-size:.85em}
table.data th,table.data td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
table.data th{background:#f5f5f5}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.score{color:#fff;border-radius:3px;padding:0 6px;display:inline-block;min-width:2em;text-align:center}
.sev{border-radius:3px;padding:0 5px;color:#fff;font-size:.8em}
.sev.error{background:#c62828}.sev.warning{background:#ef6c00}.sev.info{background:#1565c0}.sev.hint{background:#78909c}
.fix{color:#2e7d32;font-size:.9em;white-space:pre-wrap}
.filters{display:flex;flex-wrap:wrap;gap:12px;align-items:center;margin:8px 0;font-size:.9em}
#visible-count{color:#616161}
.clusters{display:grid;grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:12px}
.cluster{background:#fff;border:1px solid #e0e0e0;border-radius:6px;padding:8px}
.cluster ul{padding-left:18px;font-size:.85em}.cluster li.rep{font-weight:500}
.merge{background:#e8f5e9;border-radius:4px;padding:6px;font-size:.9em}.merge.none{background:#f5f5f5}
.cluster-graph{display:block;margin:0 auto}.cluster-graph .node{cursor:default}
"""

JS = """
(function () {
  "use strict";
  var rule = document.getElementById("filter-rule");
  var sev = document.getElementById("filter-severity");
  var file = document.getElementById("filter-file");
  var text = document.getElementById("filter-text");
  var count = document.getElementById("visible-count");
  if (!rule || !sev || !file || !text || !count) { return; }
  var rows = Array.prototype.slice.call(document.querySelectorAll("#findings-table tbody tr"));
  var texts = null;  // each row's searchable text, read from the page at the first search
  function searchable(row) {
    var cells = Array.prototype.map.call(row.cells, function (c) { return c.textContent; });
    return (cells.join(" ") + " " + (row.cells[1] ? row.cells[1].title : "")).toLowerCase();
  }
  function apply() {
    var r = rule.value, s = sev.value, f = file.value;
    var words = text.value.toLowerCase().split(/\\s+/).filter(function (w) { return w.length > 0; });
    if (words.length && texts === null) { texts = rows.map(searchable); }
    var shown = 0;
    rows.forEach(function (row, i) {
      var d = row.dataset;
      var ok = (!r || d.rule === r) && (!s || d.severity === s) && (!f || d.file === f) &&
        words.every(function (w) { return texts[i].indexOf(w) >= 0; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    count.textContent = shown + " of " + rows.length;
  }
  [rule, sev, file].forEach(function (el) { el.addEventListener("change", apply); });
  text.addEventListener("input", apply);
  apply();
}());
(function () {
  "use strict";
  var merge = document.getElementById("filter-merge");
  if (!merge) { return; }
  var items = Array.prototype.slice.call(document.querySelectorAll("#clusters [data-kind]"));
  merge.addEventListener("change", function () {
    items.forEach(function (el) { el.hidden = !!merge.value && el.dataset.kind !== merge.value; });
  });
}());
"""
