// The lab's state: one object, serialised to the URL's hash, so a link reproduces a set-up (seed included).
// The server checks the same fields (nnref/lab/state.py); the page alone keeps what only it draws.

export const FEATURES = ["x1", "x2", "x1^2", "x2^2", "x1x2", "sin x1", "sin x2"];
export const FEATURE_LABELS = {"x1": "X₁", "x2": "X₂", "x1^2": "X₁²", "x2^2": "X₂²", "x1x2": "X₁X₂",
                               "sin x1": "sin X₁", "sin x2": "sin X₂"};
export const CLASSES = {blobs: [2, 3, 4], xor: [2, 4], circles: [2, 3, 4], spirals: [2, 3, 4], custom: [2, 3, 4]};
export const NOISE = {blobs: 0.8, xor: 0.2, circles: 0.2, spirals: 0.15, custom: 0};
export const LIMITS = {layers: 6, neurons: 8, points: 1000};
export const COLOURS = ["#f59322", "#0877bd", "#2ca25f", "#8856a7"];   // orange, blue, green, purple
export const LEARNING_RATES = [0.00001, 0.0001, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];
export const REG_RATES = [0, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10];

// What the server uses (sent in "config" messages), with their defaults …
export const SERVER = {
  dataset: "circles", classes: 2, noise: 0.2, samples: 400, ratio: 50, seed: 1, points: [],
  model: "mlp", inputs: ["x1", "x2"], hidden: [4, 2], activation: "tanh",
  lr: 0.03, momentum: 0.9, batch: 10, regularization: "none", regRate: 0, k: 5, metric: "euclidean",
};
// … and what only the page uses.
export const PAGE = {showTest: false, discretize: false, pointClass: 1, hide: []};
export const DEFAULTS = {...SERVER, ...PAGE};

// The lecture's three demos (and where the line fails), one link each.
export const PRESETS = {
  "the-line": {title: "The line on the blobs", state: {dataset: "blobs", noise: 0.8, model: "line",
    inputs: ["x1", "x2"], lr: 0.03, batch: 10}},
  "where-the-line-fails": {title: "Where the line fails: XOR", state: {dataset: "xor", noise: 0.2, model: "line",
    inputs: ["x1", "x2"]}},
  "one-layer-on-xor": {title: "One hidden layer on XOR", state: {dataset: "xor", noise: 0.2, model: "mlp",
    inputs: ["x1", "x2"], hidden: [4], activation: "tanh", lr: 0.03}},
  "deeper-net-on-spirals": {title: "A deeper network on the spirals", state: {dataset: "spirals", noise: 0.15,
    model: "mlp", inputs: ["x1", "x2", "sin x1", "sin x2"], hidden: [8, 8, 6], activation: "tanh", lr: 0.03,
    batch: 10}},
};

const LISTS = new Set(["inputs", "hidden", "hide"]);
const NUMBERS = new Set(["classes", "noise", "samples", "ratio", "seed", "lr", "momentum", "batch", "regRate", "k",
                         "pointClass"]);
const FLAGS = new Set(["showTest", "discretize"]);

function encodeValue(key, value) {
  if (key === "points") return value.map(p => `${+p[0].toFixed(2)}:${+p[1].toFixed(2)}:${p[2]}`).join(";");
  if (LISTS.has(key)) return value.join(",");
  return String(value);
}

function decodeValue(key, text) {
  if (key === "points") {
    return text === "" ? [] : text.split(";").map(p => p.split(":").map(Number))
      .filter(p => p.length === 3 && p.every(Number.isFinite)).slice(0, LIMITS.points);
  }
  if (key === "hidden") return text === "" ? [] : text.split(",").map(Number);
  if (LISTS.has(key)) return text === "" ? [] : text.split(",");
  if (NUMBERS.has(key)) return Number(text);
  if (FLAGS.has(key)) return text === "true";
  return text;
}

/** The state of a URL hash ("#dataset=xor&hidden=4,2…"): the defaults, overlaid with a preset
 *  (#preset=one-layer-on-xor) and with every field the hash names. */
export function fromHash(hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state = structuredClone(DEFAULTS);
  const preset = PRESETS[params.get("preset")];
  if (preset) Object.assign(state, structuredClone(preset.state));
  for (const [key, text] of params) {
    if (key in DEFAULTS) state[key] = decodeValue(key, text);
  }
  return sanitize(state);
}

/** The hash of a state: every field, so a link stays the same set-up when the defaults change. */
export function toHash(state) {
  const params = new URLSearchParams();
  for (const key of Object.keys(DEFAULTS)) params.set(key, encodeValue(key, state[key]));
  return "#" + params.toString().replaceAll("%2C", ",").replaceAll("%3A", ":").replaceAll("%3B", ";");
}

/** What a hand-edited URL may hold, brought within the limits (the server checks again). */
export function sanitize(state) {
  const s = state;
  if (!(s.dataset in CLASSES)) s.dataset = DEFAULTS.dataset;
  if (!CLASSES[s.dataset].includes(s.classes)) s.classes = CLASSES[s.dataset][0];
  s.inputs = FEATURES.filter(f => s.inputs.includes(f));
  if (s.inputs.length === 0) s.inputs = ["x1", "x2"];
  s.hidden = s.hidden.filter(Number.isInteger).slice(0, LIMITS.layers)
    .map(n => Math.min(LIMITS.neurons, Math.max(1, n)));
  for (const key of NUMBERS) if (!Number.isFinite(s[key])) s[key] = DEFAULTS[key];
  s.points = s.points.filter(p => Math.abs(p[0]) <= 6 && Math.abs(p[1]) <= 6 && p[2] >= 0 && p[2] <= 3)
    .map(p => [p[0], p[1], Math.round(p[2])]);
  return s;
}

/** The fields the server uses. */
export function serverPart(state) {
  return Object.fromEntries(Object.keys(SERVER).map(key => [key, state[key]]));
}
