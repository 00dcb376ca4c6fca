// The playground page: the controls change the one state object (kept in the URL) and tell the server; the
// server trains nnref's models and sends frames, which are drawn as they come (the latest wins).

import {CLASSES, FIELDS, LIMITS, NOISE, PRESETS, fromHash, sanitize, serverPart, toHash} from "./state.js";
import {drawLine, drawPoints, fieldImage, paint, toPlane} from "./heatmap.js";
import {NetworkView} from "./network.js";
import {LossChart} from "./chart.js";

const $ = (id) => document.getElementById(id);
const NAMES = {line: "The line", mlp: "Neural network", knn: "k-nearest neighbours"};
const token = new URLSearchParams(location.search).get("token");

let state = fromHash(location.hash);
let socket = null, data = {train: [], test: [], classes: 2}, latest = null, drawing = false, version = 0;
let unacknowledged = 0;  // frames received since the last one drawn: each is acknowledged (the latest is drawn)
const sentAt = new Map();
// What a test or a benchmark reads: frames drawn, and how long each change took to show.
const stats = window.nnrefLab = {frames: 0, latencies: [], connected: false, playing: false, epoch: 0, version: 0,
                                 errors: [], dataVersion: 0, sent: 0, state: () => state,
                                 points: () => data.train.length + data.test.length};

const chart = new LossChart($("chart"));
const network = new NetworkView($("network"), $("layer-controls"), {
  input(feature) {
    const inputs = state.inputs.includes(feature) ? state.inputs.filter(f => f !== feature) : [...state.inputs, feature];
    if (inputs.length) change({inputs});
    else network.build({...state, inputs: state.inputs}, data.classes, true);
  },
  addLayer() { if (state.hidden.length < LIMITS.layers) change({hidden: [...state.hidden, 2]}); },
  removeLayer() { if (state.hidden.length) change({hidden: state.hidden.slice(0, -1)}); },
  neuron(layer, delta) {
    const hidden = [...state.hidden];
    hidden[layer] = Math.min(LIMITS.neurons, Math.max(1, hidden[layer] + delta));
    change({hidden});
  },
});

// ------------------------------------------------------------------------------------------------
// The connection
// ------------------------------------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/playground${token ? `?token=${encodeURIComponent(token)}` : ""}`);
  socket.binaryType = "arraybuffer";
  socket.addEventListener("open", () => { stats.connected = true; sendConfig(); });
  socket.addEventListener("close", () => {
    stats.connected = false;
    if (!$("alert").textContent) alert("The connection to nnref lab closed. Is the server still running? Reload to reconnect.");
  });
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") receive(JSON.parse(event.data));
    else receiveBinary(event.data);
  });
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function sendConfig() {
  version += 1;
  stats.sent = version;
  sentAt.set(version, performance.now());
  send({type: "config", version, state: serverPart(state)});
}

function receive(message) {
  if (message.type === "data") {
    data = message;
    stats.dataVersion = message.version;
    updatePointClasses();
    requestDraw();
  } else if (message.type === "error") {
    stats.errors.push(message.message);
    alert(message.message);
  } else if (message.type === "full") {
    alert(message.message);
  } else if (message.type === "gradcheck") {
    $("gradcheck-result").textContent = message.message ?? (
      `Gradient check of the ${message.model === "line" ? "line" : "network"} (${message.parameters} parameters, ` +
      `${message.rows} points, Δ = 1e-6): largest relative error ${message.central.toExponential(1)} with central ` +
      `differences, ${message.forward.toExponential(1)} with forward differences.`);
  }
}

function receiveBinary(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, length)));
  const payload = new Uint8Array(buffer, 4 + length);
  if (header.type === "file") {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([payload]));
    link.download = header.name;
    link.click();
    return;
  }
  if (header.version < stats.sent && stats.frames > 0) {
    // made before the page's latest change reached the server: not worth drawing — acknowledged at once, so the
    // server sends the frame that shows the change without waiting for this one to be painted
    send({type: "ready"});
    return;
  }
  latest = {header, payload};
  unacknowledged += 1;
  requestDraw();
}

// ------------------------------------------------------------------------------------------------
// Drawing a frame
// ------------------------------------------------------------------------------------------------
function requestDraw() {
  if (!drawing) {
    drawing = true;
    requestAnimationFrame(draw);
  }
}

function draw() {
  drawing = false;
  if (!latest) return;
  const frame = latest;
  latest = null;
  const started = performance.now();
  render(frame);
  stats.drawMs = 0.9 * (stats.drawMs ?? 0) + 0.1 * (performance.now() - started);
  const header = frame.header;
  stats.frames += 1;
  stats.epoch = header.epoch;
  if (header.version !== stats.version && sentAt.has(header.version)) {
    stats.latencies.push(performance.now() - sentAt.get(header.version));
    sentAt.delete(header.version);
  }
  stats.version = header.version;
  for (; unacknowledged > 0; unacknowledged--) send({type: "ready"});
}

let shown = null;

/** Draw a frame: every model's heat map with the points, the network's links and pictures, the scores. */
function render(frame) {
  shown = frame;
  const {header, payload} = frame;
  const n = header.resolution, c = header.classes;
  let offset = 0;
  const canvases = plots(header.models.map(m => m.kind));
  header.models.forEach((m, i) => {
    const bytes = payload.subarray(offset, offset + n * n * c);
    offset += n * n * c;
    paint(canvases[i], fieldImage(bytes, n, c, state.discretize));
    drawPoints(canvases[i], data.train, data.test, state.showTest);
    if (m.line) drawLine(canvases[i], m.line);
    const caption = canvases[i].nextElementSibling;
    if (caption) caption.textContent = `${NAMES[m.kind]}: test accuracy ${percent(m.test_accuracy)}, training ${percent(m.train_accuracy)}`;
  });
  const thumbs = [];
  if (header.network) {
    const t = header.thumbnail;
    header.network.scales.forEach(scale => {
      thumbs.push(payload.subarray(offset, offset + scale.length * t * t));
      offset += scale.length * t * t;
    });
  }
  network.build(state, header.classes);
  network.update(header.network, thumbs);
  showScores(header);
  if (header.diverged) alert(header.diverged);
  setPlaying(header.playing);
}

function percent(v) {
  return v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`;
}

function showScores(header) {
  $("epoch").textContent = header.epoch.toFixed(0).padStart(6, "0").replace(/(\d{3})$/, ",$1");
  const main = header.models.find(m => m.kind === "mlp") || header.models.find(m => m.kind === "line") || header.models[0];
  if (main && main.train_loss !== undefined) {
    $("losses").textContent = `Test loss ${main.test_loss?.toFixed(3) ?? "—"} · Training loss ${main.train_loss?.toFixed(3) ?? "—"}`;
    chart.add(header.epoch, main.train_loss, main.test_loss);
  } else if (main) {
    $("losses").textContent = `KNN has no loss: test accuracy ${percent(main.test_accuracy)}`;
  }
  const line = header.models.find(m => m.line)?.line;
  $("line-info").textContent = line ?
    `The line w·x + b = 0: w = (${line.w[0].toFixed(2)}, ${line.w[1].toFixed(2)}), b = ${line.b.toFixed(2)}; ` +
    `its distance from the origin |b|/‖w‖ = ${line.distance.toFixed(3)}.` : "";
}

/** One heat map per model shown (three side by side when comparing), each with its caption. */
function plots(kinds) {
  const root = $("plots");
  const key = kinds.join(",");
  if (root.dataset.kinds !== key) {
    root.dataset.kinds = key;
    root.replaceChildren();
    const size = kinds.length > 1 ? 240 : 400;
    for (const kind of kinds) {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = size;
      canvas.className = "plane";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${NAMES[kind]}: the class probabilities over the plane, with the data. ` +
                                        "Click to add a point of the chosen class.");
      canvas.addEventListener("click", (event) => {
        const box = canvas.getBoundingClientRect();
        const [x1, x2] = toPlane(canvas, (event.clientX - box.left) * canvas.width / box.width,
                                 (event.clientY - box.top) * canvas.height / box.height);
        addPoint(x1, x2);
      });
      const caption = document.createElement("figcaption");
      figure.append(canvas, caption);
      root.append(figure);
    }
  }
  return [...root.querySelectorAll("canvas")];
}

// ------------------------------------------------------------------------------------------------
// Controls
// ------------------------------------------------------------------------------------------------
function change(changes) {
  Object.assign(state, changes);
  state = sanitize(state);
  history.replaceState(null, "", location.pathname + location.search + toHash(state));
  showState();
  sendConfig();
}

function alert(message) {
  const box = $("alert");
  box.textContent = message;
  box.hidden = !message;
}

function setPlaying(playing) {
  stats.playing = playing;
  const button = $("play");
  button.setAttribute("aria-label", playing ? "Pause" : "Play");
  button.textContent = playing ? "❚❚" : "▶";
}

function fill(select, values, label = String) {
  select.replaceChildren(...values.map(v => new Option(label(v), String(v))));
}

/** Every control shows the state (after a change, a preset, a reload). */
function showState() {
  for (const id of ["dataset", "model", "activation", "regularization", "metric"]) $(id).value = state[id];
  for (const id of ["lr", "regRate", "momentum", "classes"]) {
    if (![...$(id).options].some(o => o.value === String(state[id]))) $(id).add(new Option(String(state[id])));
    $(id).value = String(state[id]);  // (a value a link holds that the menu does not offer is added to it)
  }
  for (const id of ["ratio", "noise", "samples", "batch", "k"]) {
    $(id).value = state[id];
    $(`${id}-value`).textContent = id === "batch" && state.batch === 0 ? "all" : id === "ratio" ? `${state.ratio}%` : state[id];
  }
  for (const id of ["showTest", "discretize"]) $(id).checked = state[id];
  [...$("classes").options].forEach(o => { o.disabled = !CLASSES[state.dataset].includes(Number(o.value)); });
  document.body.dataset.model = state.model;
  document.querySelectorAll("[data-group]").forEach(e => { e.hidden = state.hide.includes(e.dataset.group); });
  network.build(state, data.classes);
  updatePointClasses();
}

function updatePointClasses() {
  const classes = Math.max(state.classes, data.classes || 2);
  const select = $("point-class");
  if (select.options.length !== classes) fill(select, [...Array(classes).keys()], k => `class ${k}`);
  select.value = String(Math.min(state.pointClass, classes - 1));
}

function addPoint(x1, x2) {
  if (![x1, x2].every(v => Number.isFinite(v) && Math.abs(v) <= 6)) {
    alert("A point's x₁ and x₂ lie between −6 and 6.");
    return;
  }
  const points = state.dataset === "custom" ? state.points : [...data.train, ...data.test];
  if (points.length >= LIMITS.points) {
    alert(`At most ${LIMITS.points} points.`);
    return;
  }
  change({dataset: "custom", points: [...points, [+x1.toFixed(2), +x2.toFixed(2), state.pointClass]]});
}

function exportCsv() {
  const rows = ["x1,x2,class,split", ...data.train.map(p => `${p[0]},${p[1]},${p[2]},train`),
                ...data.test.map(p => `${p[0]},${p[1]},${p[2]},test`)];
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([rows.join("\n") + "\n"], {type: "text/csv"}));
  link.download = "nnref-lab-points.csv";
  link.click();
}

async function importCsv(file) {
  const points = [];
  for (const line of (await file.text()).split(/\r?\n/)) {
    const cells = line.split(",").map(s => s.trim());
    const [x1, x2, c] = cells.map(Number);
    if (cells.length >= 3 && [x1, x2, c].every(Number.isFinite) && Math.abs(x1) <= 6 && Math.abs(x2) <= 6 &&
        Number.isInteger(c) && c >= 0 && c <= 3) points.push([x1, x2, c]);
  }
  if (!points.length) {
    alert("No points found: the file needs lines x1,x2,class with x1 and x2 in [−6, 6] and class 0-3.");
    return;
  }
  change({dataset: "custom", points: points.slice(0, LIMITS.points)});
}

/** The controls as the state's definition describes them: every menu's options and labels, every slider's range,
 *  the classes of each dataset, and one link per preset. */
function buildControls() {
  for (const id of ["model", "activation", "regularization", "metric", "dataset", "lr", "regRate", "momentum"]) {
    const field = FIELDS[id];
    fill($(id), field.options, v => field.labels ? field.labels[field.options.indexOf(v)] : String(v));
  }
  fill($("classes"), [...Array(FIELDS.classes.hi - FIELDS.classes.lo + 1).keys()].map(i => i + FIELDS.classes.lo));
  for (const id of ["ratio", "noise", "samples", "batch", "k"]) {
    Object.assign($(id), {min: FIELDS[id].lo, max: FIELDS[id].hi, step: FIELDS[id].step});
  }
  const links = Object.entries(PRESETS).map(([name, preset]) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = `#preset=${name}`;
    link.textContent = preset.title;
    item.append(link);
    return item;
  });
  document.querySelector(".presets").prepend(...links);
}

function bind() {
  buildControls();
  for (const id of ["model", "activation", "regularization", "metric"]) {
    $(id).addEventListener("change", () => change({[id]: $(id).value}));
  }
  for (const id of ["lr", "regRate", "momentum", "classes"]) {
    $(id).addEventListener("change", () => change({[id]: Number($(id).value)}));
  }
  $("dataset").addEventListener("change", () => {
    const dataset = $("dataset").value;
    const classes = CLASSES[dataset].includes(state.classes) ? state.classes : 2;
    change({dataset, classes, noise: NOISE[dataset] ?? state.noise});
  });
  for (const id of ["ratio", "noise", "samples", "batch", "k"]) {
    $(id).addEventListener("change", () => change({[id]: Number($(id).value)}));
    $(id).addEventListener("input", () => { $(`${id}-value`).textContent = $(id).value; });
  }
  for (const id of ["showTest", "discretize"]) {
    $(id).addEventListener("change", () => {
      state[id] = $(id).checked;
      history.replaceState(null, "", location.pathname + location.search + toHash(state));
      requestRedraw();
    });
  }
  $("play").addEventListener("click", () => send({type: stats.playing ? "pause" : "play"}));
  $("step").addEventListener("click", () => send({type: "step"}));
  $("reset").addEventListener("click", () => { chart.clear(); send({type: "reset"}); });
  $("reinit").addEventListener("click", () => { chart.clear(); send({type: "reinit"}); });
  $("regenerate").addEventListener("click", () => change({seed: Math.floor(Math.random() * 2 ** 31)}));
  $("point-class").addEventListener("change", () => { state.pointClass = Number($("point-class").value); });
  $("add-point").addEventListener("click", () => addPoint(Number($("point-x1").value), Number($("point-x2").value)));
  $("clear-points").addEventListener("click", () => change({dataset: "custom", points: []}));
  $("import-csv").addEventListener("change", () => { if ($("import-csv").files[0]) importCsv($("import-csv").files[0]); });
  $("export-csv").addEventListener("click", exportCsv);
  $("export-model").addEventListener("click", () => send({type: "export"}));
  $("gradcheck").addEventListener("click", () => {
    $("gradcheck-result").textContent = "Checking the gradient …";
    send({type: "gradcheck"});
  });
  window.addEventListener("hashchange", () => {
    state = fromHash(location.hash);
    history.replaceState(null, "", location.pathname + location.search + toHash(state));
    chart.clear();
    alert("");
    showState();
    sendConfig();
  });
  if (token) $("digits-link").href = `/digits?token=${encodeURIComponent(token)}`;
}

/** The page-only settings (show test data, discretize) redraw the last frame without asking the server. */
function requestRedraw() {
  if (shown) render(shown);
}

bind();
history.replaceState(null, "", location.pathname + location.search + toHash(state));
showState();
connect();
