// Drives a running code-server in headless Chromium for tests/e2e/test_vscode_e2e.py:
// opens a story file, waits for the server's diagnostics in the Problems panel, applies a quick
// fix, saves with fix-all on save, and takes screenshots. Prints one JSON object on stdout.
//
//   node drive.mjs --url URL --folder DIR --file NAME --artifacts DIR --chromium PATH
//                  [--quick-fix-line N --quick-fix-column N] [--expect-codes ST301,ST201]
//                  [--real-file NAME]
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createRequire } from "node:module";

const { values: opts } = parseArgs({
  options: {
    url: { type: "string" },
    folder: { type: "string" },
    file: { type: "string" },
    artifacts: { type: "string" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    playwright: { type: "string" },
    "quick-fix-line": { type: "string", default: "1" },
    "quick-fix-column": { type: "string", default: "1" },
    "expect-codes": { type: "string", default: "" },
    "real-file": { type: "string" },
    scenario: { type: "string", default: "journey" },
    "expect-notifications": { type: "string", default: "" },
    click: { type: "string" },
    "timeout-ms": { type: "string", default: "120000" },
    paraphrase: { type: "string" },
    "new-story": { type: "string" },
  },
});
const require = createRequire(import.meta.url);
const { chromium } = require(opts.playwright ?? "playwright-core");
const timeout = Number(opts["timeout-ms"]);
const steps = [];
const log = (step, detail = "") => {
  steps.push({ step, detail, at: new Date().toISOString() });
  process.stderr.write(`[drive] ${step} ${detail}\n`);
};

const browser = await chromium.launch({
  executablePath: opts.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const result = { steps, problems: [], statusBar: "", editorAfterQuickFix: "", quickFixTitle: "", diskAfterSave: "" };
const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
page.setDefaultTimeout(timeout);
const shot = async (name) => {
  const path = join(opts.artifacts, `${name}.png`);
  await page.screenshot({ path });
  log("screenshot", path);
};
/** The active editor's visible text. Monaco reuses line elements out of order: sort them by top. */
const editorText = () =>
  page.evaluate(() => {
    const editor = document.querySelector(".editor-group-container.active .monaco-editor .view-lines");
    const lines = [...(editor?.querySelectorAll(".view-line") ?? [])];
    lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
    // Ghost text (inline suggestions) is drawn inside the line: leave it out.
    const text = (line) => {
      const copy = line.cloneNode(true);
      copy.querySelectorAll("[class*='ghost-text']").forEach((g) => g.remove());
      return copy.textContent.replace(/\u00a0/g, " ");
    };
    return lines.map(text).join("\n");
  });
/** The editor's text once it differs from `old` and has stopped changing (edits render in steps). */
async function settledText(old) {
  let text = await editorText();
  for (const end = Date.now() + timeout; Date.now() < end; ) {
    await page.waitForTimeout(300);
    const next = await editorText();
    if (next !== old && next === text) return next;
    text = next;
  }
  return text;
}
/** The rendered rows of the Problems panel (file rows read "NAME COUNT"). */
async function problemRows() {
  const rows = await page.locator(".markers-panel .monaco-list-row").allInnerTexts();
  return rows.map((t) => t.replace(/\s+/g, " ").trim());
}
/** Opens a workspace file with Quick Open and waits for its editor. */
async function openFile(name) {
  await page.keyboard.press("Control+P");
  await page.locator(".quick-input-widget input").waitFor();
  await page.keyboard.type(name);
  await page.locator(`.quick-input-list .monaco-list-row[aria-label*="${name}"]`).first().waitFor();
  await page.keyboard.press("Enter");
  await page.locator(`.tab.active[data-resource-name="${name}"]`).waitFor();
  await page.locator(".editor-group-container.active .monaco-editor .view-lines").waitFor();
  log("opened", name);
}

try {
  await page.goto(`${opts.url}/?folder=${encodeURIComponent(opts.folder)}`);
  await page.locator(".monaco-workbench").waitFor();
  await page.locator(".statusbar").waitFor();
  log("workbench loaded");

  if (opts.scenario === "journey") await journey();
  else if (opts.scenario === "model") await modelScenario();
  else if (opts.scenario === "report") await reportScenario();
  else if (opts.scenario === "semantic") await semanticScenario();
  else await notificationsOnly();
} catch (error) {
  result.error = String(error?.stack ?? error);
  await shot("vscode-failure").catch(() => undefined);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(result.error ? 1 : 0);

/** The user's path: diagnostics, quick fix, fix-all on save, a real backlog. */
async function journey() {
  await openFile(opts.file);

  // The Problems panel lists the server's diagnostics with their rule codes.
  await page.keyboard.press("Control+Shift+M");
  const codes = opts["expect-codes"].split(",").filter(Boolean);
  await page.waitForFunction(
    (wanted) => {
      const text = [...document.querySelectorAll(".markers-panel .monaco-list-row")].map((r) => r.textContent).join("\n");
      return wanted.length ? wanted.every((c) => text.includes(c)) : /ST\d{3}/.test(text);
    },
    codes,
    { timeout },
  );
  result.problems = await problemRows();
  log("problems", `${result.problems.length} rows`);
  // The engine state arrives from the server right after its workspace scan.
  const status = page.locator('.statusbar-item[id*="storytransformer"]');
  await page
    .waitForFunction(() => /Stories:/.test(document.querySelector('.statusbar-item[id*="storytransformer"]')?.textContent ?? ""))
    .catch(() => undefined);
  result.statusBar = ((await status.first().innerText().catch(() => "")) || "").trim();
  result.statusBarTooltip = (await status.first().getAttribute("aria-label").catch(() => "")) ?? "";
  await shot("vscode-problems");

  // Quick fix at the given position: Ctrl+G to go there, Ctrl+. for the light bulb menu.
  await page.locator(".monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+G");
  await page.locator(".quick-input-widget input").waitFor();
  await page.keyboard.type(`${opts["quick-fix-line"]}:${opts["quick-fix-column"]}`);
  await page.keyboard.press("Enter");
  const before = await editorText();
  result.editorBeforeQuickFix = before;
  await page.keyboard.press("Control+.");
  const menu = page.locator(".action-widget .monaco-list-row.action, .context-view .action-widget .action");
  await menu.first().waitFor();
  const titles = (await menu.allInnerTexts()).map((t) => t.trim());
  log("quick fix menu", JSON.stringify(titles));
  await shot("vscode-quick-fix-menu");
  const fix = menu.filter({ hasNotText: /fix all/i }).first();
  result.quickFixTitle = (await fix.innerText()).trim();
  await fix.click();
  result.editorAfterQuickFix = await settledText(before);
  log("quick fix applied", result.quickFixTitle);

  // Save: editor.codeActionsOnSave runs source.fixAll.storytransformer first.
  const path = join(opts.folder, opts.file);
  const onDiskBefore = readFileSync(path, "utf8");
  await page.keyboard.press("Control+S");
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline && readFileSync(path, "utf8") === onDiskBefore) await page.waitForTimeout(250);
  await page.waitForTimeout(500);
  result.diskAfterSave = readFileSync(path, "utf8");
  result.editorAfterSave = await editorText();
  log("saved");
  await shot("vscode-after-save");

  // Inline suggestion: typing a new story offers the backlog's roles as ghost text; Tab accepts.
  await page.keyboard.press("Control+End");
  await page.keyboard.type("As a vis", { delay: 80 });
  const ghost = page.locator(".editor-group-container.active .monaco-editor [class*='ghost-text']");
  await ghost.first().waitFor();
  result.ghostText = (await ghost.allInnerTexts()).join("").replace(/\u00a0/g, " ");
  await shot("vscode-inline-suggestion");
  const typed = await editorText();
  result.editorBeforeInlineAccept = typed;
  await page.keyboard.press("Tab");
  result.editorAfterInline = await settledText(typed);
  log("inline suggestion accepted", JSON.stringify(result.ghostText));

  if (opts["real-file"]) {
    // A real backlog: the server's workspace scan already reported it; opening it shows squiggles.
    await openFile(opts["real-file"]);
    const squiggles = ".editor-group-container.active .monaco-editor [class*='squiggly-']";
    await page.locator(squiggles).first().waitFor();
    result.realFileSquiggles = await page.locator(squiggles).count();
    await page.locator(".markers-panel").click({ position: { x: 5, y: 5 } }).catch(() => undefined);
    result.problemsAll = await problemRows();
    await shot("vscode-real-backlog");
  }
}

/** Bad setups: open the file and collect the notifications (message and buttons) that appear. */
async function notificationsOnly() {
  await openFile(opts.file);
  const wanted = opts["expect-notifications"].split("|").filter(Boolean);
  // Toasts hide after a while: read the notification centre, which keeps them all.
  const readNotifications = () =>
    page.evaluate(() =>
      [...document.querySelectorAll(".notification-list-item")].map((item) => ({
        message: (item.querySelector(".notification-list-item-message")?.textContent ?? "").trim(),
        buttons: [...item.querySelectorAll(".monaco-button")].map((b) => b.textContent.trim()).filter(Boolean),
      })),
    );
  const deadline = Date.now() + timeout;
  let notifications = [];
  while (Date.now() < deadline) {
    const center = page.locator(".notifications-center.visible");
    if (!(await center.count())) await page.locator('[id="status.notifications"]').click().catch(() => undefined);
    notifications = await readNotifications();
    const text = notifications.map((n) => n.message).join("\n");
    if (wanted.every((w) => text.includes(w))) break;
    await page.waitForTimeout(500);
  }
  const seen = new Set();
  result.notifications = notifications.filter((n) => !seen.has(n.message) && seen.add(n.message));
  result.statusBar = ((await page.locator('.statusbar-item[id*="storytransformer"]').first().innerText().catch(() => "")) || "").trim();
  await shot(`vscode-${opts.scenario}`);
  if (opts.click) {
    // Press a button of the first expected notification (e.g. Restart), then let it act.
    const item = page.locator(".notification-list-item").filter({ hasText: wanted[0] ?? "" }).first();
    await item.locator(".monaco-button", { hasText: opts.click }).first().click();
    log("clicked", opts.click);
    await page.waitForTimeout(3000);
  }
}

async function statusText() {
  const item = page.locator('.statusbar-item[id*="storytransformer"]').first();
  return ((await item.innerText().catch(() => "")) || "").trim();
}

/** Runs a command by its palette title. */
async function runCommand(title) {
  await page.keyboard.press("Control+Shift+P");
  await page.locator(".quick-input-widget input").waitFor();
  await page.keyboard.type(title);
  await page.locator(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`).first().waitFor();
  await page.keyboard.press("Enter");
  log("command", title);
}

/** Records each distinct status bar text until `done(text)` holds. */
async function watchStatus(done, seen) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    const text = await statusText();
    if (text && seen[seen.length - 1] !== text) seen.push(text);
    if (done(text)) return text;
    await page.waitForTimeout(100);
  }
  return statusText();
}

/** Load Model, Merge Selected Stories, Run Model Checks and Unload Model through the palette, watching the
 * status bar follow the engine. */
async function modelScenario() {
  await openFile(opts.file);
  result.statusesBeforeLoad = [];
  await watchStatus((t) => t.includes("Stories:"), result.statusesBeforeLoad);
  result.statusesLoading = [];
  await runCommand("StoryTransformer: Load Model");
  result.statusReady = await watchStatus((t) => /\((cpu|cuda(:\d+)?|mps)\)$/.test(t) && !/loading/.test(t), result.statusesLoading);
  result.statusReadyTooltip = (await page.locator('.statusbar-item[id*="storytransformer"]').first().getAttribute("aria-label")) ?? "";
  await shot("vscode-model-ready");

  // Merge Selected Stories: select the first two lines (two overlapping stories) and merge them.
  await page.locator(".editor-group-container.active .monaco-editor .view-lines").click();
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("Shift+ArrowDown");
  await page.keyboard.press("Shift+ArrowDown");
  const beforeMerge = await editorText();
  result.editorBeforeMerge = beforeMerge;
  await runCommand("StoryTransformer: Merge Selected Stories");
  // The server shows the merged story and applies it only when confirmed ("Apply merge").
  result.mergeQuestion = "";
  // One reading of the toasts a round: the question is told from the server's failure messages ("Merge
  // Stories: ...") by its button, never by two separate looks that a toast appearing between them could split.
  for (const end = Date.now() + timeout; Date.now() < end && (await editorText()) === beforeMerge; ) {
    const toasts = page.locator(".notification-toast");
    const texts = await toasts.allInnerTexts();
    const asking = texts.findIndex((t) => t.includes("Apply merge"));
    if (!result.mergeQuestion && asking >= 0) {
      result.mergeQuestion = texts[asking];
      await toasts.filter({ hasText: "Apply merge" }).first().locator(".monaco-button", { hasText: "Apply merge" }).first().click();
      log("clicked Apply merge");
      continue;
    }
    if (!result.mergeQuestion && texts.some((t) => t.includes("Merge Stories:"))) break;  // refused or failed
    await page.waitForTimeout(250);
  }
  result.editorAfterMerge = (await editorText()) === beforeMerge ? beforeMerge : await settledText(beforeMerge);
  result.mergeNotifications = await page.locator(".notification-toast").allInnerTexts();
  await shot("vscode-merge");

  // Run Model Checks: the server asks the loaded model about the folder's stories and says what it found.
  await runCommand("StoryTransformer: Run Model Checks");
  result.modelChecksMessage = "";
  for (const end = Date.now() + timeout; Date.now() < end && !result.modelChecksMessage; ) {
    const texts = await page.locator(".notification-toast").allInnerTexts();
    result.modelChecksMessage = texts.find((t) => t.includes("Model checks")) ?? "";
    if (!result.modelChecksMessage) await page.waitForTimeout(250);
  }
  await shot("vscode-model-checks");
  result.statusesUnloading = [];
  await runCommand("StoryTransformer: Unload Model");
  result.statusUnloaded = await watchStatus((t) => t !== result.statusReady, result.statusesUnloading);
  await shot("vscode-model-unloaded");
}

/** Open Backlog Report (quick): the report appears in a webview with its charts and findings. */
async function reportScenario() {
  await openFile(opts.file);
  await runCommand("StoryTransformer: Open Backlog Report");
  const quick = page.locator(".quick-input-list .monaco-list-row", { hasText: "Quick report" }).first();
  await quick.waitFor();
  await quick.click();
  log("report requested");
  const deadline = Date.now() + timeout;
  let frame;
  while (Date.now() < deadline && !frame) {
    for (const candidate of page.frames()) {
      const has = await candidate
        .evaluate(() => !!document.getElementById("storytransformer-report-data"))
        .catch(() => false);
      if (has) frame = candidate;
    }
    if (!frame) await page.waitForTimeout(500);
  }
  if (!frame) throw new Error("no webview with the report appeared");
  result.reportSvgCount = await frame.evaluate(() => document.querySelectorAll("svg").length);
  result.reportText = (await frame.evaluate(() => document.body.innerText)).slice(0, 4000);
  result.reportTab = (await page.locator(".tab", { hasText: "Backlog Report" }).count()) > 0;
  await shot("vscode-report");
}

/** Rows of the Problems panel that show a semantic finding (ST603/ST604) at `line` (1-based). */
async function semanticRows(line) {
  return (await problemRows()).filter((r) => /ST60[34]/.test(r) && r.includes(`[Ln ${line}, Col 1]`));
}

/** Milliseconds until a semantic finding shows at `line` (null: not within `limit` ms). */
async function waitForSemantic(line, limit) {
  const started = Date.now();
  for (const end = started + limit; Date.now() < end; ) {
    if ((await semanticRows(line)).length) return Date.now() - started;
    await page.waitForTimeout(200);
  }
  return null;
}

/** Whether a semantic finding shows at `line` the whole time for `ms` milliseconds (sampled). */
async function staysFor(line, ms) {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (!(await semanticRows(line)).length) return false;
    await page.waitForTimeout(250);
  }
  return true;
}

/** A paraphrase typed into a backlog gets its semantic overlap from the daemon, and keeps it through
 *  further edits, a save and a window reload. */
async function semanticScenario() {
  const path = join(opts.folder, opts.file);
  await openFile(opts.file);
  await page.keyboard.press("Control+Shift+M");
  // Warm-up: the file's own semantic duplicate (line 1) shows once the daemon has its model and index.
  result.warmupMs = await waitForSemantic(1, timeout);
  log("warm", `${result.warmupMs} ms`);
  if (result.warmupMs === null) throw new Error("the daemon's semantic findings never showed (warm-up)");

  // Type the paraphrase on the empty last line (line 3).
  await page.locator(".editor-group-container.active .monaco-editor .view-lines").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type(opts.paraphrase, { delay: 25 });
  await page.keyboard.press("Escape");
  result.typedAt = new Date().toISOString();
  result.paraphraseMs = await waitForSemantic(3, 60000);
  log("paraphrase overlap", `${result.paraphraseMs} ms`);
  result.problemsAfterTyping = await problemRows();
  await shot("vscode-semantic-typed");

  // A further edit: a new story above, so the paraphrase moves to line 4.
  await page.keyboard.press("Control+Home");
  await page.keyboard.press("Enter");
  await page.keyboard.press("ArrowUp");
  await page.keyboard.type(opts["new-story"], { delay: 10 });
  await page.keyboard.press("Escape");
  result.afterEditMs = await waitForSemantic(4, 60000);
  result.staysAfterEdit = result.afterEditMs !== null && (await staysFor(4, 3000));
  log("after an edit", `${result.afterEditMs} ms, stays ${result.staysAfterEdit}`);

  // Save (fix-all on save runs first), then watch it stay.
  // Wait for the saved text itself (the typed story on disk), not for any change: a file saved
  // earlier would otherwise hold this wait for the whole timeout.
  await page.keyboard.press("Control+S");
  const saved = () => readFileSync(path, "utf8").split("\n").includes(opts.paraphrase);
  for (const end = Date.now() + 30000; Date.now() < end && !saved(); ) await page.waitForTimeout(200);
  result.diskAfterSave = readFileSync(path, "utf8");
  if (!saved()) throw new Error(`Ctrl+S did not write the typed story to ${path} within 30 s`);
  result.afterSaveMs = await waitForSemantic(4, 60000);
  result.staysAfterSave = result.afterSaveMs !== null && (await staysFor(4, 5000));
  log("after save", `${result.afterSaveMs} ms, stays ${result.staysAfterSave}`);
  await shot("vscode-semantic-saved");

  // Reload the window: a new extension host and language server; the overlap comes back.
  await runCommand("Developer: Reload Window");
  await page.waitForTimeout(1000);
  await page.locator(".monaco-workbench").waitFor();
  await page.locator(".statusbar").waitFor();
  const reloaded = Date.now();
  await page.locator(`.tab.active[data-resource-name="${opts.file}"]`).waitFor().catch(() => openFile(opts.file));
  if (!(await page.locator(".markers-panel").count())) await page.keyboard.press("Control+Shift+M");
  const shown = await waitForSemantic(4, 60000);
  result.afterReloadMs = shown === null ? null : Date.now() - reloaded;
  result.staysAfterReload = shown !== null && (await staysFor(4, 3000));
  result.problemsAfterReload = await problemRows();
  log("after reload", `${result.afterReloadMs} ms, stays ${result.staysAfterReload}`);
  await shot("vscode-semantic-reloaded");
}
