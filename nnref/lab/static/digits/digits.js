// The draw-a-digit page: strokes on a canvas (mouse, touch, pen) or a dropped picture go to the server, which
// answers with what the model saw, its probabilities, its hidden activations, the gradient of a chosen class's
// loss with respect to the input pixels, and the nearest training images.

import {paint, signedImage} from "../lab/heatmap.js";
import {PageSocket} from "../socket.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const MAX_UPLOAD = 16 * 1024 * 1024;
const pad = $("pad"), ctx = pad.getContext("2d");
let socket = null, classes = [], drawing = false, last = null, strokeEnded = 0, inkOnPad = false;
let pictureOnPad = false;  // a dropped picture is shown on the pad: the next stroke starts on a black pad
let chosen = null;  // the class picked for the gradient; null: the prediction's (until the user picks one, and after Clear)
let cleared = true;  // after Clear, until the next picture is sent: answers still on their way are about the old one
// The two kinds of message: the connection's (the lab refused this page, or is gone: true until a reload) and the
// last picture's (true until the next picture, or Clear).  The banner shows the connection's first.
let connectionProblem = "", pictureProblem = "";
// What a test or a benchmark reads: how long after a stroke's end the prediction and the neighbours showed.
const stats = window.nnrefDigits = {ready: false, predictions: 0, neighbours: 0, predictionMs: [], neighboursMs: [],
                                    errors: [], last: null, connected: false, closed: false};

const CLOSED = "The connection to nnref lab closed. Is the server still running? Reload to reconnect.";
const UNREACHABLE = "Could not connect to nnref lab. Is the server running? Reload to try again.";

function connect() {
  socket = new PageSocket("/ws/digits", {
    open() { stats.connected = true; },
    json: receive,
    frame: receiveBinary,
    close() {
      // The server's own reason (no model, the lab is full) stays; otherwise: gone after it was ready, or never there.
      const wasConnected = stats.connected;
      stats.connected = false;
      stats.closed = true;
      if (!connectionProblem) say({connection: stats.ready || wasConnected ? CLOSED : UNREACHABLE});
    },
  });
}

/** The banner: set either message ("" clears it); the connection's, while there is one, is the one shown. */
function say({connection, picture}) {
  if (connection !== undefined) connectionProblem = connection;
  if (picture !== undefined) pictureProblem = picture;
  for (const message of [connection, picture]) if (message) stats.errors.push(message);
  const shown = connectionProblem || pictureProblem;
  $("alert").textContent = shown;
  $("alert").hidden = !shown;
}

function receive(message) {
  if (message.type === "ready") {
    classes = message.classes;
    $("target").replaceChildren(new Option("the prediction", ""), ...classes.map((name, i) => new Option(name, String(i))));
    $("target").value = chosen === null ? "" : String(chosen);
    $("neighbours-text").textContent = `KNN, the lecture's non-parametric model: the ${message.k} training images ` +
      "closest to your digit, of the 60,000.";
    stats.ready = true;
  } else if (message.type === "full" || (message.type === "error" && !stats.ready)) {
    say({connection: message.message});  // the lab refuses this page: full, or no model (how to start one)
  } else if (message.type === "error" && (message.kind === "no-digit" || message.kind === "not-a-picture")) {
    if (cleared) return;
    clearResults(message.kind === "no-digit" ? "No digit found." : "Not a picture nnref can read.");
    say({picture: message.message});
  } else if (message.type === "error") {
    say({picture: message.message});
  }
}

function gray(bytes, n) {
  const image = new ImageData(n, n);
  bytes.forEach((v, i) => { image.data.set([v, v, v, 255], 4 * i); });
  return image;
}

/** A 28 × 28 picture stored row by row from the top (the images), unlike the plane's maps. */
function flipRows(bytes, n) {
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < n; r++) out.set(bytes.subarray(r * n, (r + 1) * n), (n - 1 - r) * n);
  return out;
}

function receiveBinary(header, payload) {
  const now = performance.now();
  if (cleared) return;
  if (header.type === "digit") {
    say({picture: ""});
    stats.last = header;
    paint($("input"), gray(payload.subarray(0, 784), 28));
    paint($("gradient"), signedImage(flipRows(payload.subarray(784, 1568), 28), 28));
    showBars(header);
    showHidden(header.hidden, payload.subarray(1568));
    showTarget(header);
    const p = header.probabilities[header.best];
    $("prediction").textContent = `Prediction: ${header.prediction} (${Math.round(100 * p)}%)`;
    if (strokeEnded) stats.predictionMs.push(now - strokeEnded);
    stats.predictions += 1;
    $("timing").textContent = `prepared in ${header.ms.prepare.toFixed(0)} ms, through the model in ` +
      `${header.ms.model.toFixed(0)} ms`;
  } else if (header.type === "neighbours") {
    showNeighbours(header, payload);
    if (strokeEnded) stats.neighboursMs.push(now - strokeEnded);
    stats.neighbours += 1;
    strokeEnded = 0;
  }
}

function showBars(header) {
  $("bars").replaceChildren(...header.probabilities.map((p, i) => {
    const li = document.createElement("li");
    li.className = i === header.best ? "best" : "";
    const name = document.createElement("span");
    name.textContent = header.classes[i];
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    const value = document.createElement("span");
    value.textContent = `${(100 * p).toFixed(1)}%`;
    li.append(name, bar, value);
    li.setAttribute("aria-label", `class ${header.classes[i]}: ${(100 * p).toFixed(1)}%`);
    return li;
  }));
}

function showHidden(sizes, bytes) {
  const root = $("hidden");
  const parts = [];
  let offset = 0;
  sizes.forEach((size, l) => {
    const cols = Math.ceil(Math.sqrt(size * 2)), rows = Math.ceil(size / cols);
    const canvas = document.createElement("canvas");
    canvas.width = cols;
    canvas.height = rows;
    canvas.style.width = `${Math.min(260, cols * 8)}px`;
    canvas.style.height = `${Math.min(260, cols * 8) * rows / cols}px`;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `Hidden layer ${l + 1}: the activations of its ${size} neurons`);
    const image = new ImageData(cols, rows);
    for (let i = 0; i < size; i++) image.data.set([bytes[offset + i], bytes[offset + i], bytes[offset + i], 255], 4 * i);
    offset += size;
    canvas.getContext("2d").putImageData(image, 0, 0);
    const caption = document.createElement("p");
    caption.textContent = `hidden layer ${l + 1}: ${size} neurons (brighter: more active)`;
    parts.push(caption, canvas);
  });
  if (!sizes.length) {
    const p = document.createElement("p");
    p.textContent = "This model has no hidden layer: the input goes straight to the output.";
    parts.push(p);
  }
  root.replaceChildren(...parts);
}

function showNeighbours(header, payload) {
  $("neighbours").replaceChildren(...header.labels.map((label, j) => {
    const li = document.createElement("li");
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `training image ${header.indices[j]}, a ${label}, at distance ${header.distances[j]}`);
    paint(canvas, gray(payload.subarray(j * 784, (j + 1) * 784), 28));
    const text = document.createElement("span");
    text.textContent = `${label} · distance ${header.distances[j].toFixed(2)}`;
    li.append(canvas, text);
    return li;
  }));
}

// ------------------------------------------------------------------------------------------------
// Drawing and sending
// ------------------------------------------------------------------------------------------------
/** The class for the gradient: the prediction's, shown as such, until the user picks one. */
function showTarget(header) {
  $("target").options[0].textContent = chosen === null ? `the prediction (${header.classes[header.best]})` : "the prediction";
  $("target").value = chosen === null ? "" : String(chosen);
}

/** Nothing of the last picture's analysis left on the page: the prediction says why (``text``). */
function clearResults(text) {
  for (const id of ["bars", "neighbours", "hidden"]) $(id).replaceChildren();
  for (const id of ["input", "gradient"]) $(id).getContext("2d").clearRect(0, 0, 28, 28);
  $("prediction").textContent = text;
  $("timing").textContent = "";
  if ($("target").options.length) $("target").options[0].textContent = "the prediction";
  strokeEnded = 0;
}

function blankPad() {
  ctx.fillStyle = "#000000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inkOnPad = pictureOnPad = false;
}

/** Clear: a black pad, no results, no message of the last picture, and the gradient's class the prediction's. */
function clear() {
  blankPad();
  chosen = null;
  cleared = true;
  if ($("target").options.length) $("target").value = "";
  clearResults("Draw a digit.");
  say({picture: ""});
}

/** A picture to the server: a header, then its bytes. */
function sendMessage(header, bytes) {
  if (!socket?.open) return;
  cleared = false;
  socket.sendBinary(header, bytes);
}

function target() {
  return chosen;
}

function sendDrawing() {
  if (!inkOnPad) return;
  const rgba = ctx.getImageData(0, 0, pad.width, pad.height).data;
  const g = new Uint8Array(pad.width * pad.height);
  for (let i = 0; i < g.length; i++) g[i] = rgba[4 * i];
  sendMessage({type: "draw", width: pad.width, height: pad.height, target: target()}, g);
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  if (pictureOnPad) blankPad();  // a stroke over a dropped picture would be neither the picture nor a drawing
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  ctx.fillStyle = "#ffffff";
  ctx.beginPath();
  ctx.arc(last[0], last[1], 9, 0, 2 * Math.PI);
  ctx.fill();
  inkOnPad = true;
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 18;
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(...last);
  ctx.lineTo(...p);
  ctx.stroke();
  last = p;
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    strokeEnded = performance.now();
    sendDrawing();
  });
}

async function sendFile(file) {
  if (!file) return;
  if (file.size > MAX_UPLOAD) {  // not sent: what the page shows still describes the pad
    say({picture: `${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB: pictures of at most 16 MiB, please.`});
    return;
  }
  strokeEnded = performance.now();
  sendMessage({type: "file", name: file.name, target: target()}, new Uint8Array(await file.arrayBuffer()));
  const url = URL.createObjectURL(file);
  const picture = new Image();
  blankPad();  // the pad shows the picture sent (nothing, if the browser cannot show it either)
  pictureOnPad = true;
  picture.onload = () => {  // the picture on the pad, for the person's eyes
    blankPad();
    pictureOnPad = true;
    const s = Math.min(pad.width / picture.width, pad.height / picture.height);
    ctx.drawImage(picture, 0, 0, picture.width * s, picture.height * s);
    URL.revokeObjectURL(url);
  };
  picture.onerror = () => URL.revokeObjectURL(url);
  picture.src = url;
}

pad.addEventListener("dragover", (event) => event.preventDefault());
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  sendFile(event.dataTransfer.files[0]);
});
$("picture").addEventListener("change", () => {
  sendFile($("picture").files[0]);
  $("picture").value = "";  // the same file again is a new choice (after Clear, or a fixed file)
});
$("clear").addEventListener("click", clear);
$("target").addEventListener("change", () => {
  chosen = $("target").value === "" ? null : Number($("target").value);
  // after Clear there is nothing to explain: the next picture carries the class
  if (!cleared) socket?.send({type: "target", class: chosen});
});

/** The playground's address: its token, and the set-up the person came from (the playground's link here carries
 *  its hash as ``#from=…``), so going back does not lose it. */
function playgroundLink() {
  const from = new URLSearchParams(location.hash.replace(/^#/, "")).get("from") || "";
  const hash = from.replace(/^#/, "");
  return `/${token ? `?token=${encodeURIComponent(token)}` : ""}${hash ? `#${hash}` : ""}`;
}

$("playground-link").href = playgroundLink();
window.addEventListener("hashchange", () => { $("playground-link").href = playgroundLink(); });
clear();
connect();
