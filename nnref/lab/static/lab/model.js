// The network's maths on the page (TensorFlow Playground's split: the network here, the drawing in heatmap.js):
// from the weights a frame carries, the class probabilities over the plane and every hidden neuron's output — what
// nnref.plane.PlaneModel.trace computes on the server, so that frames carry weights, not pictures.
//
// A network is {inputs, activation, layers: [{w: (out × in), b: (out)}]}, input side first; the last layer gives
// one logit (two classes: σ) or one per class (softmax); every other layer is followed by the activation.

import {DOMAIN} from "./state.js";

const FEATURE = {"x1": (a) => a, "x2": (a, b) => b, "x1^2": (a) => a * a, "x2^2": (a, b) => b * b,
                 "x1x2": (a, b) => a * b, "sin x1": (a) => Math.sin(a), "sin x2": (a, b) => Math.sin(b)};
const ACTIVATION = {relu: (z) => Math.max(0, z), sigmoid: (z) => 1 / (1 + Math.exp(-z)), tanh: Math.tanh,
                    linear: (z) => z};

/** The grid's coordinates along one side: n centres from DOMAIN[0] to DOMAIN[1] (torch.linspace's). */
export function axis(n) {
  const [lo, hi] = DOMAIN, step = (hi - lo) / (n - 1);
  return Float64Array.from({length: n}, (_, i) => (i < n / 2 ? lo + i * step : hi - (n - 1 - i) * step));
}

/** One forward pass over an n × n grid of the plane (row 0 at the bottom), keeping every `every`-th point of each
 *  side for the neurons' pictures.  Returns {probs: Float64Array (n² × classes), hidden: [Float64Array (m² × h)]}
 *  with m = ceil(n / every), one per hidden layer. */
export function trace(network, classes, n, every) {
  const xs = axis(n), features = network.inputs.map(f => FEATURE[f]);
  const act = ACTIVATION[network.activation] ?? ACTIVATION.linear, m = Math.ceil(n / every);
  // each layer's weights as one flat row-major array (a missing weight — a diverged network's — is NaN)
  const layers = network.layers.map(layer => ({
    out: layer.w.length, inputs: layer.w[0]?.length ?? 0,
    w: Float64Array.from(layer.w.flat(), v => v ?? NaN), b: Float64Array.from(layer.b, v => v ?? NaN)}));
  const probs = new Float64Array(n * n * classes);
  const hidden = layers.slice(0, -1).map(layer => new Float64Array(m * m * layer.out));
  const widest = Math.max(features.length, ...layers.map(layer => layer.out));
  let a = new Float64Array(widest), z = new Float64Array(widest);
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      for (let i = 0; i < features.length; i++) a[i] = features[i](xs[col], xs[row]);
      const kept = row % every === 0 && col % every === 0 ? (row / every) * m + col / every : -1;
      for (let l = 0; l < layers.length; l++) {
        const {out, inputs, w, b} = layers[l], last = l === layers.length - 1;
        for (let j = 0, at = 0; j < out; j++) {
          let s = b[j];
          for (let i = 0; i < inputs; i++, at++) s += w[at] * a[i];
          z[j] = last ? s : act(s);
          if (!last && kept >= 0) hidden[l][kept * out + j] = z[j];
        }
        const t = a;
        a = z;
        z = t;
      }
      output(a, layers.at(-1).out, classes, probs, (row * n + col) * classes);
    }
  }
  return {probs, hidden};
}

/** The class probabilities of one point from its logits: (1 − σ(z), σ(z)), or softmax. */
function output(z, logits, classes, probs, at) {
  if (logits === 1) {
    const p = 1 / (1 + Math.exp(-z[0]));
    probs[at] = 1 - p;
    probs[at + 1] = p;
    return;
  }
  let top = -Infinity, sum = 0;
  for (let k = 0; k < classes; k++) top = Math.max(top, z[k]);
  for (let k = 0; k < classes; k++) sum += (probs[at + k] = Math.exp(z[k] - top));
  for (let k = 0; k < classes; k++) probs[at + k] /= sum;
}

/** Probabilities as the heat map's bytes (0-255), as the server once sent them. */
export function probabilityBytes(probs) {
  return Uint8Array.from(probs, p => Math.round(255 * (Number.isFinite(p) ? p : 0)));
}

/** Each hidden neuron's outputs as its picture's bytes, 128 ± 127 · output / max |output|: one Uint8Array (h × m²,
 *  neuron by neuron) per layer. */
export function neuronBytes(hidden, widths, m) {
  return hidden.map((values, l) => {
    const h = widths[l], bytes = new Uint8Array(h * m * m);
    for (let j = 0; j < h; j++) {
      let scale = 1e-12;
      for (let p = 0; p < m * m; p++) scale = Math.max(scale, Math.abs(values[p * h + j]));
      for (let p = 0; p < m * m; p++) {
        const v = Math.round(128 + (127 * values[p * h + j]) / scale);
        bytes[j * m * m + p] = Number.isFinite(v) ? Math.min(255, Math.max(0, v)) : 128;
      }
    }
    return bytes;
  });
}
