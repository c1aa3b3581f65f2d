// Run the runtime-matrix manifest in onnxruntime-node or in onnxruntime-web (Chromium).
//
//   node tests/matrix/run_js.mjs onnxruntime-node DIR
//   node tests/matrix/run_js.mjs onnxruntime-web DIR URL_OF_matrix.html
//
// DIR holds manifest.json and the models; prints {case name: {outputs} | {error}} as JSON.
// Packages come from web/node_modules; the browser is Debian's /usr/bin/chromium.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { runAll } from "./tensors.mjs";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const [runtime, dir, url] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));

let results;
if (runtime === "onnxruntime-node") {
  const ort = require("onnxruntime-node");
  results = await runAll(ort, manifest, async (model) => readFileSync(join(dir, model)));
} else if (runtime === "onnxruntime-web") {
  const { chromium } = require("playwright-core");
  const profile = mkdtempSync(join(tmpdir(), "pytensor-onnx-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(url);
    await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 60000 });
    results = await page.evaluate((m) => window.runAll(m), manifest);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
} else {
  throw new Error(`unknown runtime ${runtime}`);
}
process.stdout.write(JSON.stringify(results));
