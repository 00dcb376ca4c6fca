// The /mnist page's state: one object, kept in the URL's hash, so a link reproduces a set-up (seed included).
// What the state is — every field, its default, range and options — is defined once, on the server
// (nnref/lab/mnist/state.py), and read from it here.

export const DEFINITION = await (await fetch("/mnist/definition.json")).json();
export const FIELDS = DEFINITION.fields;
export const LIMITS = DEFINITION.limits;
export const DEFAULTS = Object.fromEntries(Object.entries(FIELDS).map(([key, field]) => [key, field.default]));

const NUMBERS = new Set(["number", "integer"]);

function decodeValue(key, text) {
  const kind = FIELDS[key].kind;
  if (kind === "sizes") return text === "" ? [] : text.split(",").map(Number);
  if (NUMBERS.has(kind)) return Number(text);
  return text;
}

/** The state of a URL hash ("#model=mlp&hidden=100,50…"): the defaults, overlaid with every field it names. */
export function fromHash(hash) {
  const state = structuredClone(DEFAULTS);
  for (const [key, text] of new URLSearchParams(hash.replace(/^#/, ""))) {
    if (key in FIELDS) state[key] = decodeValue(key, text);
  }
  return sanitize(state);
}

/** The hash of a state: every field, so a link stays the same set-up when the defaults change. */
export function toHash(state) {
  const params = new URLSearchParams();
  for (const key of Object.keys(FIELDS)) params.set(key, Array.isArray(state[key]) ? state[key].join(",") : state[key]);
  return "#" + params.toString().replaceAll("%2C", ",");
}

/** What a hand-edited URL may hold, brought within the definition (the server checks again). */
export function sanitize(state) {
  for (const [key, field] of Object.entries(FIELDS)) {
    const value = state[key];
    if (field.kind === "choice" && !field.options.includes(value)) state[key] = field.default;
    if (NUMBERS.has(field.kind)) {
      const n = Number.isFinite(value) ? value : field.default;
      state[key] = Math.min(field.hi, Math.max(field.lo, field.kind === "integer" ? Math.round(n) : n));
    }
    if (field.kind === "sizes") {
      const sizes = (Array.isArray(value) ? value : []).filter(Number.isInteger).slice(0, LIMITS.layers)
        .map(n => Math.min(field.hi, Math.max(field.lo, n)));
      state[key] = sizes.length ? sizes : [...field.default];
    }
  }
  return state;
}
