// Digits demo: draw on a canvas, downsample to the 8x8 ink levels the model was trained on,
// classify with onnxruntime-web (WebAssembly, served from node_modules: no CDN).
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

const SIDE = 8; // model input is SIDE x SIDE ink levels in [0, 1]
const BITMAP = 32; // like the UCI digits: a 32x32 bitmap, counted in 4x4 blocks
const BLOCK = BITMAP / SIDE;

ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", import.meta.url).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a static server lacks

const pad = document.getElementById("pad");
const padContext = pad.getContext("2d", { willReadFrequently: true });
const grid = document.getElementById("grid");
const gridContext = grid.getContext("2d");
const table = document.querySelector("#probabilities tbody");
const prediction = document.getElementById("prediction");
const statusLine = document.getElementById("status");

let session = null;
let lastRun = Promise.resolve();

function clearPad() {
  padContext.fillStyle = "#fff";
  padContext.fillRect(0, 0, pad.width, pad.height);
}

// ---------------------------------------------------------------------------- drawing
let drawing = false;
function position(event) {
  const box = pad.getBoundingClientRect();
  return [
    ((event.clientX - box.left) * pad.width) / box.width,
    ((event.clientY - box.top) * pad.height) / box.height,
  ];
}
pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  const [x, y] = position(event);
  padContext.beginPath();
  padContext.moveTo(x, y);
  padContext.lineTo(x + 0.01, y);
  padContext.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const [x, y] = position(event);
  padContext.lineTo(x, y);
  padContext.stroke();
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    classifyDrawing();
  });
}

// Ink levels of the drawing, its bounding box scaled into a BITMAP x BITMAP square (as the
// UCI digits were normalized), thresholded, and counted in BLOCK x BLOCK cells.
function drawingToPixels() {
  const { data, width, height } = padContext.getImageData(0, 0, pad.width, pad.height);
  let [left, top, right, bottom] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (data[4 * (y * width + x)] < 128) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  const pixels = new Float32Array(SIDE * SIDE);
  if (right < 0) return pixels;
  const boxWidth = right - left + 1;
  const boxHeight = bottom - top + 1;
  const scale = BITMAP / Math.max(boxWidth, boxHeight);
  const small = document.createElement("canvas");
  small.width = small.height = BITMAP;
  const smallContext = small.getContext("2d", { willReadFrequently: true });
  smallContext.fillStyle = "#fff";
  smallContext.fillRect(0, 0, BITMAP, BITMAP);
  const w = boxWidth * scale;
  const h = boxHeight * scale;
  smallContext.drawImage(pad, left, top, boxWidth, boxHeight, (BITMAP - w) / 2, (BITMAP - h) / 2, w, h);
  const bitmap = smallContext.getImageData(0, 0, BITMAP, BITMAP).data;
  for (let y = 0; y < BITMAP; y++) {
    for (let x = 0; x < BITMAP; x++) {
      if (bitmap[4 * (y * BITMAP + x)] < 160) {
        pixels[Math.floor(y / BLOCK) * SIDE + Math.floor(x / BLOCK)] += 1 / (BLOCK * BLOCK);
      }
    }
  }
  return pixels;
}

// --------------------------------------------------------------------------- display
function showGrid(pixels) {
  const cell = grid.width / SIDE;
  for (let i = 0; i < SIDE * SIDE; i++) {
    const level = Math.round(255 * (1 - pixels[i]));
    gridContext.fillStyle = `rgb(${level}, ${level}, ${level})`;
    gridContext.fillRect((i % SIDE) * cell, Math.floor(i / SIDE) * cell, cell, cell);
  }
  grid.dataset.pixels = JSON.stringify(Array.from(pixels));
}

function showProbabilities(probabilities) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  table.replaceChildren();
  probabilities.forEach((p, digit) => {
    const row = table.insertRow();
    row.className = digit === best ? "top" : "";
    row.insertCell().outerHTML = `<td class="digit">${digit}</td>`;
    const bar = row.insertCell();
    bar.className = "bar";
    bar.innerHTML = `<div style="width: ${(100 * p).toFixed(1)}%"></div>`;
    const value = row.insertCell();
    value.className = "value";
    value.dataset.value = p.toPrecision(9);
    value.textContent = `${(100 * p).toFixed(2)} %`;
  });
  prediction.innerHTML = `Prediction: <strong>${best}</strong>`;
  prediction.dataset.digit = String(best);
}

// ---------------------------------------------------------------------------- model
async function classify(pixels) {
  const input = new ort.Tensor("float32", Float32Array.from(pixels), [1, SIDE * SIDE]);
  const start = performance.now();
  const { probabilities } = await session.run({ pixels: input });
  const elapsed = performance.now() - start;
  const values = Array.from(probabilities.data);
  showGrid(pixels);
  showProbabilities(values);
  statusLine.textContent =
    `onnxruntime-web ${ort.env.versions.web} (wasm backend) \u00b7 model.onnx \u00b7 ` +
    `last inference ${elapsed.toFixed(2)} ms`;
  document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
  return values;
}

function classifyDrawing() {
  lastRun = lastRun.then(() => classify(drawingToPixels()));
  return lastRun;
}

function drawSample(pixels) {
  // Paint the sample's 8x8 ink levels onto the pad, so what is shown is what is classified.
  clearPad();
  const cell = pad.width / SIDE;
  for (let i = 0; i < SIDE * SIDE; i++) {
    const level = Math.round(255 * (1 - pixels[i]));
    padContext.fillStyle = `rgb(${level}, ${level}, ${level})`;
    padContext.fillRect((i % SIDE) * cell, Math.floor(i / SIDE) * cell, cell, cell);
  }
}

async function start() {
  clearPad();
  padContext.lineWidth = 22;
  padContext.lineCap = "round";
  padContext.lineJoin = "round";
  padContext.strokeStyle = "#000";
  const [model, samples] = await Promise.all([
    ort.InferenceSession.create("model.onnx", { executionProviders: ["wasm"] }),
    fetch("samples.json").then((response) => response.json()),
  ]);
  session = model;
  const holder = document.getElementById("samples");
  for (const sample of samples) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(sample.label);
    button.dataset.sample = String(sample.label);
    button.addEventListener("click", () => {
      drawSample(sample.pixels);
      lastRun = lastRun.then(() => classify(sample.pixels));
    });
    holder.append(button);
  }
  document.getElementById("clear").addEventListener("click", () => {
    clearPad();
    classifyDrawing();
  });
  await classify(new Float32Array(SIDE * SIDE));
  document.body.dataset.ready = "true";
}

window.demo = {
  ready: start().catch((error) => {
    statusLine.textContent = `Error: ${error.message}`;
    document.body.dataset.error = error.message;
    throw error;
  }),
  classify: (pixels) => {
    lastRun = lastRun.then(() => classify(pixels));
    return lastRun;
  },
};
