// Opens a StoryTransformer HTML report in headless Chromium (playwright-core driving the system
// browser) and prints what the Python test asserts, as one JSON object on stdout:
// console errors, requests that left the page, charts and graphs found, and what the filters do.
// Usage: node check_report.js REPORT.html SCREENSHOT.png CHROMIUM_PATH
"use strict";
const path = require("path");
const { chromium } = require("playwright-core");

async function main() {
  const [report, screenshot, executablePath] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
           "--disable-sync", "--no-first-run"],
  });
  const result = { consoleErrors: [], pageErrors: [], externalRequests: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("console", (msg) => { if (msg.type() === "error") result.consoleErrors.push(msg.text()); });
    page.on("pageerror", (err) => result.pageErrors.push(String(err)));
    page.on("request", (req) => {
      if (!req.url().startsWith("file:") && !req.url().startsWith("data:")) result.externalRequests.push(req.url());
    });
    await page.goto("file://" + path.resolve(report), { waitUntil: "load" });

    result.title = await page.title();
    result.charts = await page.$$eval("figure.chart", (figs) => figs.map((f) => ({
      name: f.dataset.chart,
      svg: !!f.querySelector("svg"),
      text: f.querySelector("svg") ? f.querySelector("svg").textContent : "",
      width: f.querySelector("svg") ? f.querySelector("svg").getBoundingClientRect().width : 0,
    })));
    result.graphs = await page.$$eval("svg.cluster-graph", (gs) => gs.map((g) => ({
      nodes: g.querySelectorAll("g.node").length,
      edges: g.querySelectorAll("line.edge").length,
      representative: g.querySelectorAll("g.node.representative").length,
      width: g.getBoundingClientRect().width,
    })));
    const visible = () => page.$$eval("#findings-table tbody tr", (rows) => rows.filter((r) => !r.hidden && r.offsetParent !== null).length);
    const rulesShown = () => page.$$eval("#findings-table tbody tr", (rows) =>
      [...new Set(rows.filter((r) => !r.hidden).map((r) => r.dataset.rule))]);
    result.rowsTotal = await page.$$eval("#findings-table tbody tr", (rows) => rows.length);
    result.rowsVisible = await visible();
    const options = await page.$$eval("#filter-rule option", (os) => os.map((o) => o.value).filter((v) => v));
    result.ruleOptions = options;
    if (options.length) {
      await page.selectOption("#filter-rule", options[0]);
      result.afterRule = { rule: options[0], visible: await visible(), rules: await rulesShown(),
                           counter: await page.textContent("#visible-count") };
      await page.selectOption("#filter-rule", "");
    }
    // the search reads each row's text and its rule's name (the rule cell's title)
    result.searches = [];
    const firstRow = await page.$$eval("#findings-table tbody tr", (rows) => rows.length ?
      { name: rows[0].cells[1].title, where: rows[0].cells[2].textContent } : null);
    if (firstRow) {
      for (const query of [firstRow.name, firstRow.where]) {
        await page.fill("#filter-text", query);
        result.searches.push({ query, visible: await visible(), counter: await page.textContent("#visible-count") });
      }
    }
    await page.fill("#filter-text", "zzzz-no-such-word");
    result.afterNoMatch = await visible();
    await page.fill("#filter-text", "");
    result.afterClear = await visible();
    const severities = await page.$$eval("#filter-severity option", (os) => os.map((o) => o.value).filter((v) => v));
    if (severities.length) {
      await page.selectOption("#filter-severity", severities[0]);
      result.afterSeverity = { severity: severities[0], visible: await visible(),
        severities: await page.$$eval("#findings-table tbody tr", (rows) =>
          [...new Set(rows.filter((r) => !r.hidden).map((r) => r.dataset.severity))]) };
      await page.selectOption("#filter-severity", "");
    }
    result.sections = await page.$$eval("section[id]", (ss) => ss.map((s) => s.id));
    await page.screenshot({ path: screenshot, fullPage: true });
    result.screenshot = screenshot;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => { process.stderr.write(String(err && err.stack || err) + "\n"); process.exit(1); });
