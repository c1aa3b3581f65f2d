// Run the runtime-matrix manifest in onnxruntime-node or in onnxruntime-web (Chromium).
//
//   node tests/matrix/run_js.mjs onnxruntime-node DIR
//   node tests/matrix/run_js.mjs onnxruntime-web DIR URL_OF_matrix.html
//
// DIR holds manifest.json and the models; prints {case name: {outputs} | {error}} as JSON.
// Packages come from web/node_modules; the browser is Debian's /usr/bin/chromium.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

import { withPage } from "../web/browser.mjs";
import { runAll } from "./tensors.mjs";

const require = createRequire(new URL("../../web/package.json", import.meta.url));
const [runtime, dir, url] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));

let results;
if (runtime === "onnxruntime-node") {
  const ort = require("onnxruntime-node");
  results = await runAll(ort, manifest, async (model) => readFileSync(join(dir, model)));
} else if (runtime === "onnxruntime-web") {
  results = await withPage(url, (page) => page.evaluate((m) => window.runAll(m), manifest));
} else {
  throw new Error(`unknown runtime ${runtime}`);
}
process.stdout.write(JSON.stringify(results));
