// dashboard.js: drives Debian's chromium (headless, through playwright-core)
// for test_dashboard.py, one command at a time, so that the Python test can
// act on hookcast and its subscriber sinks between looks at the page.
//
//   DASHBOARD_USER=ops DASHBOARD_PASSWORD=TOKEN node dashboard.js BASE_URL
//
// The credentials answer the page's Basic challenge, as a person would at
// the browser's prompt (the environment keeps the token out of ps).
// Reads one JSON command a line on stdin and answers each with one JSON line
// on stdout: {"ok": true, "value": ...} or {"ok": false, "error": "..."}.
//   {"op": "goto", "path": "/"}              opens BASE_URL + path
//   {"op": "wait", "js": EXPR, "arg": A, "timeout": MS}
//       waits until the function EXPR, called with A in the page, returns a
//       true value; answers that value
//   {"op": "eval", "js": EXPR, "arg": A}     EXPR(A) in the page
//   {"op": "click", "selector": S}           clicks it (Playwright selector)
//   {"op": "fill", "selector": S, "text": T} types T into the input S
//   {"op": "screenshot", "path": P}          the full page, as PNG
//   {"op": "report"}                         what the page did so far:
//       {"console": [...], "foreign": [...], "navigations": [...],
//        "requests": [...], "dialogs": [...]}
//   {"op": "close"}
// Every dialog (the Purge confirmation) is accepted and recorded.
"use strict";
const readline = require("readline");
const { chromium } = require("playwright-core");

const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";

// "(JS)(ARG)" as an expression: the page's CSP forbids eval, and Playwright
// evaluates an expression string outside of it, as it does a function.
function call(c) {
  return "(" + c.js + ")(" + JSON.stringify(c.arg === undefined ? null : c.arg) + ")";
}

async function main() {
  const base = process.argv[2];
  const user = process.env.DASHBOARD_USER || "";
  const password = process.env.DASHBOARD_PASSWORD || "";
  const origin = new URL(base).origin;
  const browser = await chromium.launch({ executablePath: EXECUTABLE,
    headless: true, args: ["--no-sandbox"] });
  const context = await browser.newContext({
    httpCredentials: { username: user, password },
    viewport: { width: 1360, height: 900 } });
  const page = await context.newPage();
  const seen = { console: [], foreign: [], navigations: [], requests: [],
    dialogs: [] };

  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning")
      seen.console.push(m.type() + ": " + m.text());
  });
  page.on("pageerror", (e) => seen.console.push("pageerror: " + e.message));
  context.on("request", (r) => {
    const u = new URL(r.url());
    seen.requests.push(r.method() + " " + u.pathname + u.search);
    if (u.protocol !== "data:" && u.origin !== origin)
      seen.foreign.push(r.url());
  });
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame())
      seen.navigations.push(f.url());
  });
  page.on("dialog", (d) => {
    seen.dialogs.push(d.message());
    d.accept();
  });

  const ops = {
    goto: async (c) => {
      const r = await page.goto(base + c.path, { waitUntil: "load" });
      return r ? r.status() : null;
    },
    wait: async (c) => {
      const h = await page.waitForFunction(call(c), undefined,
        { timeout: c.timeout || 10000, polling: 100 });
      return h.jsonValue();
    },
    eval: async (c) => page.evaluate(call(c)),
    click: async (c) => {
      await page.click(c.selector, { timeout: c.timeout || 10000 });
      return true;
    },
    fill: async (c) => {
      await page.fill(c.selector, c.text, { timeout: c.timeout || 10000 });
      return true;
    },
    screenshot: async (c) => {
      await page.screenshot({ path: c.path, fullPage: true });
      return c.path;
    },
    report: async () => seen,
  };

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim())
      continue;
    const c = JSON.parse(line);
    if (c.op === "close")
      break;
    let answer;
    try {
      if (!ops[c.op])
        throw new Error("unknown op " + c.op);
      answer = { ok: true, value: await ops[c.op](c) };
    } catch (e) {
      answer = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
  await browser.close();
  // stdin stays open (the test keeps its end): leave without waiting on it.
  process.exit(0);
}

main().catch((e) => {
  process.stderr.write("dashboard.js: " + (e && e.stack ? e.stack : e) + "\n");
  process.exit(1);
});
