// The network's maths on the page (TensorFlow Playground's split: the network here, the drawing in heatmap.js):
// from the weights a frame carries, the class probabilities over the plane and every hidden neuron's output — what
// nnref.plane.PlaneModel.trace computes on the server, so that frames carry weights, not pictures.
//
// A network is {inputs, activation, layers: [{w: (out × in), b: (out)}]}, input side first; the last layer gives
// one logit (two classes: σ) or one per class (softmax); every other layer is followed by the activation.
//
// The grid goes through the network a layer at a time, as the server's batch does: each layer's values are kept
// neuron by neuron (one row of n² values per neuron) in two buffers that every call reuses, and each neuron's row
// is its bias plus up to four input rows at a time, times their weights — tight loops over typed arrays, with no
// object or closure per point. The inputs' rows depend only on the grid and are kept between calls.

import {DOMAIN} from "./state.js";

const FEATURE = {"x1": (a) => a, "x2": (a, b) => b, "x1^2": (a) => a * a, "x2^2": (a, b) => b * b,
                 "x1x2": (a, b) => a * b, "sin x1": (a) => Math.sin(a), "sin x2": (a, b) => Math.sin(b)};

/** tanh(x) within 3e-8 of Math.tanh's (float32's own rounding), about 5× faster: the 13/6-degree rational
 *  interpolant of Eigen's fast tanh, on [−9, 9] (beyond it tanh is ±1 to float32's precision; NaN stays NaN). */
export function tanh(x) {
  x = x > 9 ? 9 : x < -9 ? -9 : x;
  const x2 = x * x;
  const p = x * ((((((-2.76076847742355e-16 * x2 + 2.00018790482477e-13) * x2 - 8.60467152213735e-11) * x2 +
    5.12229709037114e-08) * x2 + 1.48572235717979e-05) * x2 + 6.37261928875436e-04) * x2 + 4.89352455891786e-03);
  const q = ((1.19825839466702e-06 * x2 + 1.18534705686654e-04) * x2 + 2.26843463243900e-03) * x2 +
    4.89352518554385e-03;
  return p / q;
}

/** Each activation, in place over a row of pre-activations (σ(z) = (1 + tanh(z/2)) / 2). */
const ACTIVATE = {
  tanh(z) { for (let p = 0; p < z.length; p++) z[p] = tanh(z[p]); },
  sigmoid(z) { for (let p = 0; p < z.length; p++) z[p] = 0.5 + 0.5 * tanh(0.5 * z[p]); },
  relu(z) { for (let p = 0; p < z.length; p++) if (z[p] < 0) z[p] = 0; },
  linear() {},
};

/** The grid's coordinates along one side: n centres from DOMAIN[0] to DOMAIN[1] (torch.linspace's). */
export function axis(n) {
  const [lo, hi] = DOMAIN, step = (hi - lo) / (n - 1);
  return Float64Array.from({length: n}, (_, i) => (i < n / 2 ? lo + i * step : hi - (n - 1 - i) * step));
}

const inputRows = new Map();  // "n inputs" → the inputs over the grid, one row of n² values per input

/** The network's inputs over an n × n grid (row 0 at the bottom): a Float64Array (inputs × n²), kept. */
function inputsOver(inputs, n) {
  const key = `${n} ${inputs.join(",")}`;
  if (!inputRows.has(key)) {
    if (inputRows.size >= 8) inputRows.clear();
    const xs = axis(n), rows = new Float64Array(inputs.length * n * n);
    inputs.forEach((name, i) => {
      const f = FEATURE[name];
      for (let row = 0; row < n; row++) for (let col = 0; col < n; col++) rows[(i * n + row) * n + col] = f(xs[col], xs[row]);
    });
    inputRows.set(key, rows);
  }
  return inputRows.get(key);
}

let buffers = [new Float64Array(0), new Float64Array(0)];  // one layer's values and the next's, reused

/** One forward pass over an n × n grid of the plane (row 0 at the bottom), keeping every `every`-th point of each
 *  side for the neurons' pictures.  Returns {probs: Float64Array (n² × classes), hidden: [Float64Array (h × m²),
 *  neuron by neuron]} with m = ceil(n / every), one per hidden layer — written over `into`'s arrays (an earlier
 *  result: the last frame's) where they have the size, so that a frame takes no new memory. */
export function trace(network, classes, n, every, into = null) {
  const points = n * n, m = Math.ceil(n / every);
  const activate = ACTIVATE[network.activation] ?? ACTIVATE.linear;
  const widest = Math.max(1, ...network.layers.map(layer => layer.w.length));
  if (buffers[0].length < widest * points) buffers = [new Float64Array(widest * points), new Float64Array(widest * points)];
  let a = inputsOver(network.inputs, n), z = buffers[0];
  const hidden = [];
  network.layers.forEach((layer, l) => {
    const last = l === network.layers.length - 1, h = layer.w.length;
    for (let j = 0; j < h; j++) {
      const row = z.subarray(j * points, (j + 1) * points);
      weighted(row, a, layer.w[j], layer.b[j]);
      if (!last) activate(row);
    }
    if (!last) hidden.push(kept(z, n, every, reuse(into?.hidden[l], h * m * m)));
    a = z;
    z = buffers[(l + 1) % 2];
  });
  const logits = network.layers.at(-1)?.w.length ?? 0;
  return {probs: output(a, logits, classes, reuse(into?.probs, points * classes)), hidden};
}

/** An earlier array when it has this length, else a new one. */
function reuse(array, length) {
  return array?.length === length ? array : new Float64Array(length);
}

/** row = b + Σᵢ wᵢ · (input row i), the input rows four at a time (a missing weight — a diverged network's — is
 *  NaN). */
function weighted(row, a, w, b) {
  const points = row.length, at = (i) => a.subarray(i * points, (i + 1) * points), weight = (i) => w[i] ?? NaN;
  row.fill(b ?? NaN);
  let i = 0;
  for (; i + 4 <= w.length; i += 4) {
    const a0 = at(i), a1 = at(i + 1), a2 = at(i + 2), a3 = at(i + 3);
    const w0 = weight(i), w1 = weight(i + 1), w2 = weight(i + 2), w3 = weight(i + 3);
    for (let p = 0; p < points; p++) row[p] += w0 * a0[p] + w1 * a1[p] + w2 * a2[p] + w3 * a3[p];
  }
  for (; i < w.length; i++) {
    const ai = at(i), wi = weight(i);
    for (let p = 0; p < points; p++) row[p] += wi * ai[p];
  }
}

/** A hidden layer's values at every `every`-th point of each side, into `values` (h × m², neuron by neuron). */
function kept(z, n, every, values) {
  for (let k = 0, start = 0; k < values.length; start += n * n) {  // each neuron's row of the layer
    for (let row = 0; row < n; row += every) {
      for (let p = start + row * n, end = p + n; p < end; p += every) values[k++] = z[p];
    }
  }
  return values;
}

/** The class probabilities of every point from its logits (rows of n² values, logit by logit): (1 − σ(z), σ(z)),
 *  or softmax, into `probs` (points × classes). */
function output(z, logits, classes, probs) {
  const points = probs.length / classes;
  for (let p = 0; p < points; p++) {
    const at = p * classes;
    if (logits === 1) {
      const s = 1 / (1 + Math.exp(-z[p]));
      probs[at] = 1 - s;
      probs[at + 1] = s;
      continue;
    }
    let top = -Infinity, sum = 0;
    for (let k = 0; k < classes; k++) top = Math.max(top, z[k * points + p]);
    for (let k = 0; k < classes; k++) sum += (probs[at + k] = Math.exp(z[k * points + p] - top));
    for (let k = 0; k < classes; k++) probs[at + k] /= sum;
  }
  return probs;
}

/** Probabilities as the heat map's bytes (0-255), as the server once sent them. */
export function probabilityBytes(probs, bytes = new Uint8Array(probs.length)) {
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i];
    bytes[i] = p >= 0 && p <= 1 ? Math.round(255 * p) : 0;  // (NaN: 0)
  }
  return bytes;
}

/** Each hidden neuron's outputs as its picture's bytes, 128 ± 127 · output / max |output| (rounded; a value that is
 *  not a number: 128): one Uint8Array (h × m², neuron by neuron) per layer, from trace's `hidden`. */
export function neuronBytes(hidden, widths, m) {
  const size = m * m;
  return hidden.map((values, l) => {
    const bytes = new Uint8Array(widths[l] * size);
    for (let start = 0; start < bytes.length; start += size) {
      let scale = 1e-12;
      for (let p = start; p < start + size; p++) scale = Math.max(scale, Math.abs(values[p]));
      const unit = 127 / scale;
      for (let p = start; p < start + size; p++) {
        const v = 128.5 + unit * values[p];  // 1.5…255.5 (a NaN anywhere: NaN, as its scale is)
        bytes[p] = v === v ? v : 128;  // (the Uint8Array's store truncates: the rounding)
      }
    }
    return bytes;
  });
}
