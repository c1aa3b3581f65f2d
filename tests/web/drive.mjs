// Drive the digits demo in headless Chromium with playwright-core and print what the page shows.
//
//   node tests/web/drive.mjs URL SCREENSHOT.png
//
// Prints one JSON object: {cases: [{source, pixels, probabilities, predicted}], errors: [...]}.
// The browser is opened by ./browser.mjs.
import { withPage } from "./browser.mjs";

const [url, screenshot] = process.argv.slice(2);

await withPage(url, async (page, errors) => {
  const runs = () => page.evaluate(() => Number(document.body.dataset.runs || 0));
  const state = (source) =>
    page.evaluate((source) => ({
      source,
      pixels: JSON.parse(document.getElementById("grid").dataset.pixels),
      probabilities: Array.from(document.querySelectorAll("#probabilities td.value"), (td) =>
        Number(td.dataset.value),
      ),
      predicted: Number(document.getElementById("prediction").dataset.digit),
    }), source);
  async function afterNextRun(action) {
    const before = await runs();
    await action();
    await page.waitForFunction((n) => Number(document.body.dataset.runs || 0) > n, before);
  }

  const cases = [await state("blank")];
  // Held-out samples, through the page's buttons.
  const labels = await page.$$eval("#samples button", (buttons) => buttons.map((b) => b.dataset.sample));
  for (const label of labels) {
    await afterNextRun(() => page.click(`#samples button[data-sample="${label}"]`));
    cases.push(await state(`sample ${label}`));
  }
  // Known synthetic input, through the page's API.
  await afterNextRun(() =>
    page.evaluate(() => window.demo.classify(Array.from({ length: 64 }, (_, i) => ((i * 7) % 17) / 16))),
  );
  cases.push(await state("pattern"));
  // A "7" drawn with the mouse: the canvas downsampling path.
  await afterNextRun(() => page.click("#clear"));
  const box = await page.locator("#pad").boundingBox();
  const at = (fx, fy) => [box.x + fx * box.width, box.y + fy * box.height];
  await afterNextRun(async () => {
    await page.mouse.move(...at(0.22, 0.18));
    await page.mouse.down();
    await page.mouse.move(...at(0.78, 0.18), { steps: 12 });
    await page.mouse.move(...at(0.45, 0.86), { steps: 16 });
    await page.mouse.up();
  });
  cases.push(await state("drawn 7"));
  await page.screenshot({ path: screenshot });
  console.log(JSON.stringify({ cases, errors }));
});
