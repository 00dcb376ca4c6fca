// Drawing the plane: class probabilities as a heat map, the points on top, the lecture's line; and the small
// pictures of each input and neuron.  The plane is x₁, x₂ ∈ [−6, 6]; row 0 of every map is its bottom.

import {COLOURS, DOMAIN} from "./state.js";

export {DOMAIN};
const WHITE = [247, 247, 247];
const rgb = COLOURS.map(hex => [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16)));

/** Plane coordinates of a point of a canvas of this size (and back). */
export function toPlane(canvas, px, py) {
  const [lo, hi] = DOMAIN;
  return [lo + (px / canvas.width) * (hi - lo), hi - (py / canvas.height) * (hi - lo)];
}

export function toPixel(canvas, x1, x2) {
  const [lo, hi] = DOMAIN;
  return [((x1 - lo) / (hi - lo)) * canvas.width, ((hi - x2) / (hi - lo)) * canvas.height];
}

/** An n × n map of c class probabilities (bytes 0-255, pixel by pixel) as an image: white where the classes
 *  are equally likely, the likeliest class's colour as it becomes certain (discretized: always full colour).
 *  Drawn into `image` when given (an n × n ImageData kept for the next frame), else into a new one. */
export function fieldImage(bytes, n, c, discretize, image = new ImageData(n, n)) {
  const colours = palette(`field ${c} ${discretize}`, (k, top) => {  // the likeliest class k, its probability's byte
    const s = discretize ? 1 : Math.max(0, Math.min(1, (top / 255 - 1 / c) / (1 - 1 / c)));
    return WHITE.map((white, j) => white + (rgb[k][j] - white) * s);
  }, c);
  const pixels = new Uint32Array(image.data.buffer);
  for (let row = 0; row < n; row++) {
    for (let col = 0, at = row * n * c, out = (n - 1 - row) * n; col < n; col++, at += c) {  // row 0: the bottom
      let best = 0;
      for (let k = 1; k < c; k++) if (bytes[at + k] > bytes[at + best]) best = k;
      pixels[out + col] = colours[best * 256 + bytes[at + best]];
    }
  }
  return image;
}

/** A neuron's (or an input's) values over the plane, 0-255 around 128, as orange (−) · white · blue (+); into
 *  `image` when given. */
export function signedImage(bytes, n, image = new ImageData(n, n)) {
  const colours = palette("signed", (_, byte) => {
    const v = (byte - 128) / 127, colour = v < 0 ? rgb[0] : rgb[1];
    return WHITE.map((white, j) => white + (colour[j] - white) * Math.min(1, Math.abs(v)));
  });
  const pixels = new Uint32Array(image.data.buffer);
  for (let row = 0; row < n; row++) {
    for (let col = 0, at = row * n, out = (n - 1 - row) * n; col < n; col++) pixels[out + col] = colours[bytes[at + col]];
  }
  return image;
}

const palettes = new Map();

/** Every colour a byte can be drawn in, worked out once: colour(k, byte) → [r, g, b] for k < kinds, as RGBA pixels
 *  (Uint32Array, kinds × 256, in the ImageData's own byte order). */
function palette(key, colour, kinds = 1) {
  if (!palettes.has(key)) {
    const rgba = new Uint8ClampedArray(kinds * 256 * 4);  // (clamped and rounded as an ImageData's are)
    for (let k = 0; k < kinds; k++) {
      for (let byte = 0; byte < 256; byte++) {
        rgba.set([...colour(k, byte), 255], (k * 256 + byte) * 4);
      }
    }
    palettes.set(key, new Uint32Array(rgba.buffer));
  }
  return palettes.get(key);
}

const scratch = document.createElement("canvas"), images = new WeakMap();

/** The n × n ImageData a canvas is drawn from, kept from one frame to the next (no new one a frame). */
export function imageFor(canvas, n) {
  let image = images.get(canvas);
  if (image?.width !== n) images.set(canvas, image = new ImageData(n, n));
  return image;
}

/** Draw an ImageData stretched over a whole canvas (smoothly, as TensorFlow Playground does); a canvas of the
 *  image's own size takes it directly. */
export function paint(canvas, image) {
  if (canvas.width === image.width && canvas.height === image.height) {
    canvas.getContext("2d").putImageData(image, 0, 0);
    return;
  }
  if (scratch.width !== image.width || scratch.height !== image.height) {  // (a canvas resized is a new canvas)
    scratch.width = image.width;
    scratch.height = image.height;
  }
  scratch.getContext("2d").putImageData(image, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(scratch, 0, 0, canvas.width, canvas.height);
}

const pointLayers = new WeakMap();  // canvas → {train, test, showTest, layer}: its points, drawn once

/** The points: training points with a white ring, test points (when shown) with a dark one — drawn once into a
 *  layer of the canvas's size, which each frame then copies (the same points: the same layer). */
export function drawPoints(canvas, train, test, showTest) {
  let kept = pointLayers.get(canvas);
  if (kept?.train !== train || kept.test !== test || kept.showTest !== showTest ||
      kept.layer.width !== canvas.width || kept.layer.height !== canvas.height) {
    const layer = Object.assign(document.createElement("canvas"), {width: canvas.width, height: canvas.height});
    kept = {train, test, showTest, layer};
    pointLayers.set(canvas, kept);
    const ctx = layer.getContext("2d");
    const dot = (p, ring) => {
      const [x, y] = toPixel(layer, p[0], p[1]);
      ctx.beginPath();
      ctx.arc(x, y, Math.max(2.5, layer.width / 100), 0, 2 * Math.PI);
      ctx.fillStyle = COLOURS[p[2]];
      ctx.fill();
      ctx.lineWidth = 0.8;
      ctx.strokeStyle = ring;
      ctx.stroke();
    };
    train.forEach(p => dot(p, "#ffffff"));
    if (showTest) test.forEach(p => dot(p, "#222222"));
  }
  canvas.getContext("2d").drawImage(kept.layer, 0, 0);
}

const marksShown = new WeakMap();  // canvas → what its marks show

/** The marks over a plane — the points, the lecture's line, the backward pass's instance (each null when not shown)
 *  — drawn into ``canvas``, a transparent layer over the heat map, only when one of them changed: a frame that
 *  changes only the heat map (most frames) leaves the marks as they are.  Returns whether it drew. */
export function drawMarks(canvas, {train, test, showTest, line = null, instance = null}) {
  const key = JSON.stringify([showTest, line && [line.w, line.b], instance, canvas.width, canvas.height]);
  const shown = marksShown.get(canvas);
  if (shown?.train === train && shown.test === test && shown.key === key) return false;
  marksShown.set(canvas, {train, test, key});
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  drawPoints(canvas, train, test, showTest);
  if (line) drawLine(canvas, line);
  if (instance) drawInstance(canvas, instance);
  return true;
}

/** The lecture's line w·x + b = 0 across the plane, the perpendicular from the origin, and the origin. */
export function drawLine(canvas, line) {
  const [w1, w2] = line.w, b = line.b, [lo, hi] = DOMAIN;
  const ends = [];
  if (Math.abs(w2) > 1e-12) for (const x of [lo, hi]) ends.push([x, -(w1 * x + b) / w2]);
  if (Math.abs(w1) > 1e-12) for (const y of [lo, hi]) ends.push([-(w2 * y + b) / w1, y]);
  const inside = ends.filter(([x, y]) => x >= lo - 1e-9 && x <= hi + 1e-9 && y >= lo - 1e-9 && y <= hi + 1e-9);
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = "#111111";
  if (inside.length >= 2) {
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(...toPixel(canvas, ...inside[0]));
    ctx.lineTo(...toPixel(canvas, ...inside[1]));
    ctx.stroke();
  }
  const norm2 = w1 * w1 + w2 * w2;
  if (norm2 > 0) {  // the foot of the perpendicular: −b w / ‖w‖²
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(...toPixel(canvas, 0, 0));
    ctx.lineTo(...toPixel(canvas, -b * w1 / norm2, -b * w2 / norm2));
    ctx.stroke();
    ctx.setLineDash([]);
  }
  const [ox, oy] = toPixel(canvas, 0, 0);
  ctx.fillStyle = "#111111";
  ctx.fillRect(ox - 3, oy - 0.75, 6, 1.5);
  ctx.fillRect(ox - 0.75, oy - 3, 1.5, 6);
}

/** An input's values over an n × n grid of the plane, scaled to −1…1 and stored like a neuron's thumbnail. */
export function inputBytes(feature, n) {
  const f = {"x1": (a) => a, "x2": (a, b) => b, "x1^2": (a) => a * a, "x2^2": (a, b) => b * b,
             "x1x2": (a, b) => a * b, "sin x1": (a) => Math.sin(a), "sin x2": (a, b) => Math.sin(b)}[feature];
  const [lo, hi] = DOMAIN, values = new Float32Array(n * n);
  let max = 1e-12;
  for (let row = 0; row < n; row++) {
    for (let col = 0; col < n; col++) {
      const v = f(lo + (col / (n - 1)) * (hi - lo), lo + (row / (n - 1)) * (hi - lo));
      values[row * n + col] = v;
      max = Math.max(max, Math.abs(v));
    }
  }
  return Uint8Array.from(values, v => Math.round(128 + (127 * v) / max));
}

/** The instance of the backward pass view: a ring around it, in its class's colour, and a cross. */
export function drawInstance(canvas, instance) {
  const [x, y] = toPixel(canvas, instance[0], instance[1]);
  const r = Math.max(7, canvas.width / 40), ctx = canvas.getContext("2d");
  ctx.lineWidth = 3;
  ctx.strokeStyle = "#111111";
  ctx.beginPath();
  ctx.arc(x, y, r, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = COLOURS[instance[2]];
  ctx.beginPath();
  ctx.arc(x, y, r - 2.5, 0, 2 * Math.PI);
  ctx.moveTo(x - r - 4, y);
  ctx.lineTo(x + r + 4, y);
  ctx.moveTo(x, y - r - 4);
  ctx.lineTo(x, y + r + 4);
  ctx.stroke();
}
