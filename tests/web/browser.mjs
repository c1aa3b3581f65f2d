// Open a page of web/ in headless Chromium with playwright-core, for tests/web/drive*.mjs.
//
// playwright-core comes from web/node_modules; the browser is Debian's /usr/bin/chromium, with
// a fresh profile and no background networking.
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Load url, wait for document.body.dataset.ready (throwing on dataset.error), run
// drive(page, errors) and return what it returns; errors collects page errors, console errors
// and failed requests.
export async function withPage(url, drive) {
  const profile = mkdtempSync(join(tmpdir(), "pytensor-onnx-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1240, height: 640 },
  });
  const errors = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`console: ${message.text()}`);
    });
    page.on("requestfailed", (request) => errors.push(`requestfailed: ${request.url()}`));

    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready || document.body.dataset.error, null, {
      timeout: 60000,
    });
    const failure = await page.evaluate(() => document.body.dataset.error);
    if (failure) throw new Error(`the page failed to start: ${failure}`);
    return await drive(page, errors);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}
