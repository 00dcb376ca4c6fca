// The lab's state: one object, serialised to the URL's hash, so a link reproduces a set-up (seed included).
// What the state is — every field, its default, range and options, the presets, the inputs, datasets and their
// classes, the colours — is defined once, on the server (nnref/lab/state.py), and read from it here.

export const DEFINITION = await (await fetch("/lab/definition.json")).json();

const F = DEFINITION.fields;
export const FIELDS = F;
export const FEATURES = F.inputs.options;
export const FEATURE_LABELS = Object.fromEntries(F.inputs.options.map((f, i) => [f, F.inputs.labels[i]]));
export const CLASSES = DEFINITION.classes;
export const NOISE = DEFINITION.noise;
export const LIMITS = DEFINITION.limits;
export const COLOURS = DEFINITION.colours;
export const DOMAIN = DEFINITION.domain;
export const PRESETS = DEFINITION.presets;
export const LEARNING_RATES = F.lr.options;
export const REG_RATES = F.regRate.options;

// The fields the server uses (sent in "config" messages), with their defaults, and all the fields' defaults.
export const SERVER = Object.fromEntries(DEFINITION.server.map(key => [key, F[key].default]));
export const DEFAULTS = Object.fromEntries(Object.entries(F).map(([key, field]) => [key, field.default]));

const LISTS = new Set(["list", "inputs", "hidden"]);
const NUMBERS = new Set(["number", "integer"]);

function encodeValue(key, value) {
  const kind = F[key].kind;
  if (kind === "instance") return value.length ? `${+value[0].toFixed(2)}:${+value[1].toFixed(2)}:${value[2]}` : "";
  if (kind === "weights") return value.map(w => w.join(":")).join(";");
  if (kind === "points") {  // x1:x2:class, and :1 after a test point
    return value.map(p => `${+p[0].toFixed(2)}:${+p[1].toFixed(2)}:${p[2]}${p[3] === 1 ? ":1" : ""}`).join(";");
  }
  if (LISTS.has(kind)) return value.join(",");
  return String(value);
}

function decodeValue(key, text) {
  const kind = F[key].kind;
  if (kind === "instance") {
    const p = text.split(":").map(Number);
    return p.length === 3 && p.every(Number.isFinite) ? p : [];
  }
  if (kind === "weights") {
    return text === "" ? [] : text.split(";").map(w => w.split(":").map(Number))
      .filter(w => w.length === 4 && w.every(Number.isFinite)).slice(0, LIMITS.typed);
  }
  if (kind === "points") {
    return text === "" ? [] : text.split(";").map(p => p.split(":").map(Number))
      .filter(p => (p.length === 3 || p.length === 4) && p.every(Number.isFinite)).slice(0, LIMITS.points);
  }
  if (kind === "hidden") return text === "" ? [] : text.split(",").map(Number);
  if (LISTS.has(kind)) return text === "" ? [] : text.split(",");
  if (NUMBERS.has(kind)) return Number(text);
  if (kind === "flag") return text === "true";
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

/** What a hand-edited URL may hold, brought within the definition's limits (the server checks again). */
export function sanitize(state) {
  const s = state;
  for (const [key, field] of Object.entries(F)) {
    if (field.kind === "choice" && !field.options.includes(s[key])) s[key] = field.default;
    if (NUMBERS.has(field.kind)) {
      if (!Number.isFinite(s[key])) s[key] = field.default;
      s[key] = Math.min(field.hi, Math.max(field.lo, field.kind === "integer" ? Math.round(s[key]) : s[key]));
    }
    if (field.kind === "list" || field.kind === "inputs") s[key] = field.options.filter(f => s[key].includes(f));
    if (field.kind === "flag") s[key] = s[key] === true;
  }
  if (!CLASSES[s.dataset].includes(s.classes)) s.classes = CLASSES[s.dataset][0];
  if (s.inputs.length === 0) s.inputs = [...F.inputs.default];
  s.hidden = s.hidden.filter(Number.isInteger).slice(0, LIMITS.layers)
    .map(n => Math.min(LIMITS.neurons, Math.max(1, n)));
  if (s.instance.length && !(s.instance.slice(0, 2).every(v => Math.abs(v) <= DOMAIN[1]) && s.instance[2] >= 0)) {
    s.instance = [];
  }
  s.weights = s.weights.filter(w => Math.abs(w[3]) <= LIMITS.weight);
  s.points = s.points.filter(p => p.every(v => Math.abs(v) <= DOMAIN[1]) && p[2] >= 0 && p[2] <= 3)
    .map(p => [p[0], p[1], Math.round(p[2]), ...(p[3] === 1 ? [1] : [])]);
  return s;
}

/** The fields the server uses. */
export function serverPart(state) {
  return Object.fromEntries(Object.keys(SERVER).map(key => [key, state[key]]));
}
