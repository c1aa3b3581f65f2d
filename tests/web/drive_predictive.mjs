// Drive the posterior-predictive page in headless Chromium and print the draws it computed.
//
//   node tests/web/drive_predictive.mjs URL SCREENSHOT.png
//
// Prints one JSON object: {cases: [{source, seed, seedShown, x, shape, draws, quantiles}],
// errors: [...]}; draws are row major [draws, points], quantiles maps "0.05", "0.5", "0.95" to
// one value per point. The browser is opened by ./browser.mjs.
import { withPage } from "./browser.mjs";

const [url, screenshot] = process.argv.slice(2);

await withPage(url, async (page, errors) => {
  const settled = () => page.waitForFunction(() => document.body.dataset.pending === "0");
  const state = (source) =>
    page.evaluate((source) => {
      const last = window.predictive.last;
      return {
        source,
        seed: last.seed,
        seedShown: document.getElementById("seed").value,
        x: Array.from(last.x),
        shape: last.shape,
        draws: Array.from(last.draws),
        quantiles: Object.fromEntries(Object.entries(last.quantiles).map(([q, v]) => [q, Array.from(v)])),
      };
    }, source);

  // What the page shows when it opens (the form's defaults).
  await settled();
  const cases = [await state("initial")];
  await page.screenshot({ path: screenshot });
  // A grid and a seed typed into the form, each field committed with Tab (a change event).
  for (const [field, value] of [["from", "-3"], ["to", "13"], ["points", "9"], ["seed", "7"]]) {
    await page.fill(`#${field}`, value);
    await page.press(`#${field}`, "Tab");
  }
  await settled();
  cases.push(await state("form"));
  // The "New seed" button: a random seed, written into the form.
  await page.click("#new-seed");
  await settled();
  cases.push(await state("new seed"));
  // The form's grid and seed again, through the page's API: the same draws must come back.
  await page.evaluate(() => window.predictive.predict({ from: -3, to: 13, points: 9, seed: "7" }));
  cases.push(await state("api"));
  console.log(JSON.stringify({ cases, errors }));
});
