// Run a manifest of models with an onnxruntime module (onnxruntime-node or onnxruntime-web).
// Tensors travel as {type, dims, data: base64 of the raw little-endian bytes}.

const ARRAYS = {
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  bool: Uint8Array,
};

function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function toBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function toTensor(ort, entry) {
  const bytes = fromBase64(entry.data);
  const Array_ = ARRAYS[entry.type];
  const data = new Array_(bytes.buffer, bytes.byteOffset, bytes.byteLength / Array_.BYTES_PER_ELEMENT);
  return new ort.Tensor(entry.type, data, entry.dims);
}

export function fromTensor(tensor) {
  const data = tensor.data;
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { type: tensor.type, dims: Array.from(tensor.dims), data: toBase64(bytes) };
}

// manifest: [{name, model, inputs: {name: tensor}}]; load(model) -> model bytes (Uint8Array).
export async function runAll(ort, manifest, load) {
  const results = {};
  for (const item of manifest) {
    try {
      const session = await ort.InferenceSession.create(await load(item.model));
      const feeds = {};
      for (const [name, entry] of Object.entries(item.inputs)) feeds[name] = toTensor(ort, entry);
      const outputs = await session.run(feeds);
      results[item.name] = { outputs: session.outputNames.map((n) => fromTensor(outputs[n])) };
      await session.release();
    } catch (error) {
      results[item.name] = { error: String(error && error.message ? error.message : error) };
    }
  }
  return results;
}
