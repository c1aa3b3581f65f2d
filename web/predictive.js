// Posterior-predictive demo: feed a grid of x and a seed to the exported PyMC regression with
// onnxruntime-web (WebAssembly, served from node_modules: no CDN), and plot the draws' 5, 50
// and 95 % quantiles over the training data.
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

const QUANTILES = [0.05, 0.5, 0.95];
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static server lacks

const plot = document.getElementById("plot");
const context = plot.getContext("2d");
const form = document.getElementById("controls");
const statusLine = document.getElementById("status");

let session = null;
let training = null;
let lastRun = Promise.resolve();
let pending = 0;

// ------------------------------------------------------------------------------ numbers
function linspace(from, to, points) {
  return Float64Array.from({ length: points }, (_, i) => from + ((to - from) * i) / (points - 1));
}

// The q-quantile of sorted values, interpolated linearly between order statistics (NumPy's
// default method: position q * (n - 1)).
function quantile(sorted, q) {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const fraction = position - below;
  return sorted[below] + fraction * (sorted[above] - sorted[below]);
}

// Quantiles of each column of draws ([draws, points], row major): {q: Float64Array(points)}.
function columnQuantiles(draws, [count, points]) {
  const result = Object.fromEntries(QUANTILES.map((q) => [q, new Float64Array(points)]));
  const column = new Float64Array(count);
  for (let j = 0; j < points; j++) {
    for (let i = 0; i < count; i++) column[i] = draws[i * points + j];
    column.sort();
    for (const q of QUANTILES) result[q][j] = quantile(column, q);
  }
  return result;
}

function meanAndSd(values) {
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
  return [mean, Math.sqrt(variance)];
}

// About five round tick values covering [low, high].
function ticks(low, high) {
  const step0 = (high - low) / 5;
  const magnitude = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= step0);
  const values = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) values.push(v);
  return values.map((v) => Number(v.toPrecision(12)));
}

// -------------------------------------------------------------------------------- plot
function draw({ x, quantiles }) {
  const { width, height } = plot;
  const margin = { left: 52, right: 16, top: 14, bottom: 36 };
  const inside = training.x.map((v, i) => [v, training.y[i]]).filter(([v]) => v >= x[0] && v <= x.at(-1));
  const ys = [...quantiles[0.05], ...quantiles[0.95], ...inside.map(([, v]) => v)];
  let [yLow, yHigh] = [Math.min(...ys), Math.max(...ys)];
  const pad = 0.05 * (yHigh - yLow || 1);
  [yLow, yHigh] = [yLow - pad, yHigh + pad];
  const [xLow, xHigh] = [x[0], x.at(-1)];
  const px = (v) => margin.left + ((v - xLow) / (xHigh - xLow)) * (width - margin.left - margin.right);
  const py = (v) => height - margin.bottom - ((v - yLow) / (yHigh - yLow)) * (height - margin.top - margin.bottom);

  context.clearRect(0, 0, width, height);
  context.font = "12px system-ui, sans-serif";
  context.lineWidth = 1;
  context.strokeStyle = "#e3e6ec";
  context.fillStyle = "#6b7385";
  context.textAlign = "center";
  context.textBaseline = "top";
  for (const v of ticks(xLow, xHigh)) {
    context.beginPath();
    context.moveTo(px(v), margin.top);
    context.lineTo(px(v), height - margin.bottom);
    context.stroke();
    context.fillText(String(v), px(v), height - margin.bottom + 6);
  }
  context.textAlign = "right";
  context.textBaseline = "middle";
  for (const v of ticks(yLow, yHigh)) {
    context.beginPath();
    context.moveTo(margin.left, py(v));
    context.lineTo(width - margin.right, py(v));
    context.stroke();
    context.fillText(String(v), margin.left - 6, py(v));
  }
  context.textAlign = "center";
  context.fillText("x", (margin.left + width - margin.right) / 2, height - 8);
  context.fillText("y", 12, (margin.top + height - margin.bottom) / 2);

  context.fillStyle = "rgba(33, 86, 201, 0.22)";
  context.beginPath();
  x.forEach((v, j) => context.lineTo(px(v), py(quantiles[0.95][j])));
  for (let j = x.length - 1; j >= 0; j--) context.lineTo(px(x[j]), py(quantiles[0.05][j]));
  context.closePath();
  context.fill();

  context.strokeStyle = "#2156c9";
  context.lineWidth = 2;
  context.beginPath();
  x.forEach((v, j) => context.lineTo(px(v), py(quantiles[0.5][j])));
  context.stroke();

  context.fillStyle = "#1d2330";
  for (const [v, w] of inside) {
    context.beginPath();
    context.arc(px(v), py(w), 3, 0, 2 * Math.PI);
    context.fill();
  }
}

// ------------------------------------------------------------------------------- model
// Draws of y at x: {seed, x, shape, draws, quantiles}; also kept as window.predictive.last.
async function predict({ from, to, points, seed }) {
  const x = linspace(from, to, points);
  const feeds = {
    seed: new ort.Tensor("int64", BigInt64Array.of(BigInt(seed)), []),
    x: new ort.Tensor("float64", x, [points]),
  };
  const start = performance.now();
  const { y } = await session.run(feeds);
  const elapsed = performance.now() - start;
  const result = { seed: String(seed), x, shape: y.dims, draws: y.data, quantiles: columnQuantiles(y.data, y.dims) };
  draw(result);
  statusLine.textContent =
    `onnxruntime-web ${ort.env.versions.web} (wasm backend) \u00b7 predictive.onnx \u00b7 ` +
    `${y.dims[0]} draws \u00d7 ${points} points in ${elapsed.toFixed(1)} ms`;
  window.predictive.last = result;
  return result;
}

// Why {from, to, points, seed} cannot be run, or "" if it can.
function invalid({ from, to, points, seed }) {
  if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) return "x from must be below x to";
  if (!Number.isInteger(points) || points < 2 || points > 400) return "grid points: 2 to 400";
  if (!/^-?[0-9]+$/.test(seed) || BigInt(seed) < INT64_MIN || BigInt(seed) > INT64_MAX) {
    return "the seed is a 64-bit integer";
  }
  return "";
}

// Runs one prediction after the ones already queued; body.dataset.pending counts them.
function schedule(parameters) {
  pending += 1;
  document.body.dataset.pending = String(pending);
  lastRun = lastRun
    .then(() => predict(parameters))
    .finally(() => {
      pending -= 1;
      document.body.dataset.pending = String(pending);
    });
  return lastRun;
}

function update() {
  const { elements } = form;
  const parameters = {
    from: Number(elements.from.value),
    to: Number(elements.to.value),
    points: Number(elements.points.value),
    seed: elements.seed.value.trim(),
  };
  const problem = invalid(parameters);
  if (problem) statusLine.textContent = problem;
  else schedule(parameters);
}

function showPosterior(posterior) {
  const table = document.querySelector("#posterior tbody");
  for (const [name, chains] of Object.entries(posterior)) {
    const [mean, sd] = meanAndSd(chains.flat());
    const row = table.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = `${mean.toFixed(3)} \u00b1 ${sd.toFixed(3)}`;
  }
}

async function start() {
  [session, training] = await Promise.all([
    ort.InferenceSession.create("predictive.onnx", { executionProviders: ["wasm"] }),
    fetch("predictive.json").then((response) => response.json()),
  ]);
  showPosterior(training.posterior);
  form.addEventListener("change", update);
  document.getElementById("new-seed").addEventListener("click", () => {
    form.elements.seed.value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
    update();
  });
  update();
  await lastRun;
  document.body.dataset.ready = "true";
}

window.predictive = {
  ready: start().catch((error) => {
    statusLine.textContent = `Error: ${error.message}`;
    document.body.dataset.error = error.message;
    throw error;
  }),
  last: null,
  // predict({from, to, points, seed: "decimal string"}) runs after any queued runs, bypassing
  // the form; it resolves to what it computed (also kept in window.predictive.last).
  predict: (parameters) => {
    const problem = invalid(parameters);
    return problem ? Promise.reject(new Error(problem)) : schedule(parameters);
  },
};
