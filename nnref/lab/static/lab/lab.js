// The playground page: the controls change the one state object (kept in the URL) and tell the server; the
// server trains nnref's models and sends frames, which are drawn as they come (the latest wins).
//
// What a change does follows its field's group in the state's definition (nnref/lab/state.py): a recipe change goes
// on from the same weights, epoch and loss curve; a KNN change rebuilds KNN; a network or data change starts a new
// network at epoch 0, paused — each new network is a new "generation" of frames, and a new loss curve.

import {CLASSES, DOMAIN, FEATURE_LABELS, FIELDS, LIMITS, NOISE, PRESETS, fromHash, sanitize, serverPart, toHash}
  from "./state.js";
import {drawMarks, fieldImage, imageFor, paint, toPlane} from "./heatmap.js";
import {NetworkView} from "./network.js";
import {pictures} from "./pictures.js";
import {PageSocket} from "../socket.js";
import {LossChart} from "./chart.js";
import {importReport, parseCsv, toCsv} from "./csv.js";
import {BackpropView} from "./backprop.js";
import {Teacher, displayName} from "./teacher.js";
import {fitScreen, setText} from "./layout.js";

const $ = (id) => document.getElementById(id);
const NAMES = {line: "The line", mlp: "Neural network", knn: "k-nearest neighbours"};
const token = new URLSearchParams(location.search).get("token");

let state = fromHash(location.hash);
let socket = null, data = {train: [], test: [], classes: 2}, latest = null, drawing = false, version = 0;
let unacknowledged = 0;  // frames received since the last one drawn: each is acknowledged (the latest is drawn)
let generation = null;   // the network the frames show: a new one starts a new loss curve
const sentAt = new Map();
// What a test or a benchmark reads: frames drawn (and networks traced anew for them, and planes whose marks were
// drawn anew), how long each change took to show.
const stats = window.nnrefLab = {frames: 0, traced: 0, marks: 0, latencies: [], connected: false, playing: false, epoch: 0,
                                 version: 0, errors: [], notices: [], dataVersion: 0, sent: 0, state: () => state,
                                 points: () => data.train.length + data.test.length, data: () => data, csv: null,
                                 chart: () => chart.points.length};

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
  edit(layer, neuron, source) { openEditor(layer, neuron, source); },
});
const teacher = new Teacher($("teacher-line"));
const backprop = new BackpropView($("backprop"), {stage(layer) { network.highlight(layer); }});

// ------------------------------------------------------------------------------------------------
// The connection
// ------------------------------------------------------------------------------------------------
function connect() {
  socket = new PageSocket("/ws/playground", {
    open() { stats.connected = true; sendConfig(); tellName(); },
    close() {
      stats.connected = false;
      setPlaying(false);  // nothing plays without a server
      document.body.dataset.connected = "false";
      if (!stats.full) alert("The connection to nnref lab closed: the server stopped, or the network went. Start " +
                             "nnref lab again and reload this page.");
    },
    json: receive,
    frame: receiveBinary,
  });
}

function send(message) {
  socket?.send(message);
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
    stats.full = true;
    alert(message.message);
  } else if (message.type === "notice") {
    transient = message.message;
    showNotices();
  } else if (message.type === "teacher") {
    const setup = teacher.receive(message);
    stats.teacher = message;
    if (setup && location.hash !== setup) location.hash = setup;  // (the hash change opens it: followHash)
    else showState();
  } else if (message.type === "gradcheck") {
    $("gradcheck-result").textContent = message.message ?? (
      `Gradient check of the ${message.model === "line" ? "line" : "network"} (${message.parameters} parameters, ` +
      `${message.rows} points, Δ = 1e-6): largest relative error ${message.central.toExponential(1)} with central ` +
      `differences, ${message.forward.toExponential(1)} with forward differences.`);
  }
}

function receiveBinary(header, payload) {
  if (header.type === "file") {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([payload]));
    link.download = header.name;
    link.click();
    return;
  }
  if (header.models.some(m => m.kind === "knn") && payload.length) knnMap = payload.slice();  // sent once per KNN
  if (header.version < stats.sent) {
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

let shown = null, knnMap = null, drawn = null;
window.nnrefLabFrame = () => shown?.header;  // (what a test reads: the last frame drawn, and its pictures)
window.nnrefLabPictures = () => drawn && {maps: drawn.maps.map(m => Array.from(m)),
                                          neurons: drawn.neurons.map(m => Array.from(m))};

/** Draw a frame: every model's heat map with the points, the network's links and pictures, the scores. */
function render(frame) {
  shown = frame;
  const {header} = frame;
  if (header.generation !== generation) {  // a new network: a new loss curve, and no old check's verdict
    generation = header.generation;
    chart.clear();
    $("gradcheck-result").textContent = "";
  }
  const kinds = header.models.map(m => m.kind);
  const canvases = plots(kinds.length ? kinds : ["empty"]);
  drawn = pictures(header, knnMap);
  stats.traced += drawn.traced;
  header.models.forEach((m, i) => {
    const n = header.resolution;
    if (canvases[i].width !== n) canvases[i].width = canvases[i].height = n;  // (the page scales it to its side)
    paint(canvases[i], fieldImage(drawn.maps[i], n, header.classes, state.discretize, imageFor(canvases[i], n)));
    const instance = state.backprop && state.instance.length ? state.instance : null;
    const marks = {train: data.train, test: data.test, showTest: state.showTest, line: m.line, instance};
    if (drawMarks(marksOf(canvases[i]), marks)) stats.marks += 1;
    setText(canvases[i].nextElementSibling,
            `${NAMES[m.kind]}: test accuracy ${percent(m.test_accuracy)}, training ${percent(m.train_accuracy)}`);
  });
  if (!kinds.length) emptyPlane(canvases[0]);
  const thumbs = drawn.neurons;
  network.build(state, header.classes);
  network.update(header.network, thumbs);
  showScores(header);
  backprop.show(state.backprop ? header.backward ?? null : null, header.playing);
  showLineWeights(header);
  stats.notices = header.notices ?? [];
  showNotices(false);
  setPlaying(header.playing && stats.connected);  // (a frame drawn after the server went plays no more)
  fitIfMoved(kinds);
}

let laidOut = "";

/** Lay the page out again (fitScreen, which measures it: a layout of the page each time) only when a frame changed
 *  what takes room — the plots, the network's shape, the length of a text, the notices, Play/Pause (a resized
 *  window is laid out by its own event); a frame that changes numbers only is drawn without it. */
function fitIfMoved(kinds) {
  const texts = ["steps", "losses", "line-info", "notices", "backprop-note", "alert", "gradcheck-result", "plots"]
    .map(id => $(id).textContent.length);
  const key = JSON.stringify([kinds, network.shape, state.backprop, backprop.stage, stats.playing, texts]);
  if (key !== laidOut) {
    laidOut = key;
    fitScreen();
  }
}

/** The plane with nothing to show but the points (your own, before any model can be made of them). */
function emptyPlane(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#f7f7f7";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  drawMarks(marksOf(canvas), {train: data.train, test: data.test, showTest: true});
  canvas.nextElementSibling.textContent = "Your own points: click to add one of the class chosen under Data.";
}

function percent(v) {
  return v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`;
}

function showScores(header) {
  setText($("epoch"), header.epoch.toFixed(0).padStart(6, "0").replace(/(\d{3})$/, ",$1"));
  setText($("steps"), String(header.steps ?? 0));
  stats.steps = header.steps ?? 0;
  const main = header.models.find(m => m.kind === "mlp") || header.models.find(m => m.kind === "line") ||
    header.models[0];
  if (main && main.train_loss !== undefined) {
    setText($("losses"), `Test loss ${main.test_loss?.toFixed(3) ?? "—"} · Training loss ${main.train_loss?.toFixed(3) ?? "—"}`);
    chart.add(header.steps ?? header.epoch, main.train_loss, main.test_loss);  // a Step and an Apply: a point each
  } else if (main) {
    $("losses").textContent = `k-nearest neighbours have no loss: test accuracy ${percent(main.test_accuracy)}`;
  } else {
    $("losses").textContent = "No model yet: nothing to train.";
  }
  const line = header.models.find(m => m.line)?.line;
  setText($("line-info"), line ?
    `The line w·x + b = 0: w = (${line.w[0].toFixed(2)}, ${line.w[1].toFixed(2)}), b = ${line.b.toFixed(2)}; ` +
    `its distance from the origin |b|/‖w‖ = ${line.distance.toFixed(3)}.` : "");
}

let transient = "";  // what the server said of the last Play or Step (until the next action)

/** The set-up's notices (each only while it is true) and the last answer to Play or Step (and the page laid out
 *  again, unless a frame being drawn does that). */
function showNotices(fit = true) {
  const note = state.backprop ? "" : presetNote;
  setText($("backprop-note"), state.backprop ? presetNote : "");
  const items = [...(note ? [note] : []), ...(transient ? [transient] : []), ...stats.notices.filter(n => n !== transient)];
  const list = $("notices");
  if (list.textContent !== items.join("")) list.replaceChildren(...items.map(t => Object.assign(document.createElement("li"), {textContent: t})));
  if (fit) fitScreen();
}

/** A plane's marks (points, line, instance): the canvas laid over its heat map, at the plane's full side. */
function marksOf(canvas) {
  return canvas.parentElement.querySelector("canvas.marks");
}

/** One heat map per model shown (three side by side when comparing), each with its caption: the heat map's canvas
 *  has the pixels of the frame's grid (the page scales it, smoothly, to the plane's side: a frame changes a few
 *  thousand pixels, not the side's square), and under the same box a transparent canvas of the side's pixels holds
 *  the marks, which most frames leave as they are. */
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
      canvas.width = canvas.height = size;  // (until a frame gives its grid)
      canvas.dataset.side = String(size);  // the plane's side on the page, at most
      canvas.className = "plane";
      canvas.getContext("2d", {alpha: false});  // (opaque: what lies under it is not drawn)
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${NAMES[kind] ?? "Your own points"}: the class probabilities over the ` +
                                        "plane, with the data. Click to add a point of the chosen class.");
      canvas.addEventListener("click", (event) => {
        if (dragged) return;  // the end of a drag of the line, not a click
        const [x1, x2] = planeAt(canvas, event);
        if (state.backprop) pickInstance(x1, x2);
        else if (state.dataset === "custom") addPoint(x1, x2);
        else sayBuiltIn();
      });
      if (kind === "line") dragLine(canvas);
      const caption = document.createElement("figcaption");
      const marks = Object.assign(document.createElement("canvas"), {width: size, height: size, className: "marks"});
      marks.setAttribute("aria-hidden", "true");
      figure.append(canvas, caption, marks);
      root.append(figure);
    }
    fitScreen();
  }
  return [...root.querySelectorAll("canvas.plane")];
}

// ------------------------------------------------------------------------------------------------
// Controls
// ------------------------------------------------------------------------------------------------
function change(changes) {
  const rebuilds = Object.keys(changes).some(k => ["network", "data"].includes(FIELDS[k].group));
  if (rebuilds && !("weights" in changes)) changes = {...changes, weights: []};  // typed for the old network
  if (rebuilds) presetNote = "";  // another set-up than the preset's
  Object.assign(state, changes);
  state = sanitize(state);
  history.replaceState(null, "", location.pathname + location.search + toHash(state));
  alert("");  // a new change: an earlier complaint no longer stands
  transient = "";
  showState();
  sendConfig();
}

function alert(message) {
  const box = $("alert");
  box.textContent = message;
  box.hidden = !message;
  fitScreen();
}

function setPlaying(playing) {
  stats.playing = playing;
  const button = $("play");
  if (button.getAttribute("aria-label") !== (playing ? "Pause" : "Play")) {
    button.setAttribute("aria-label", playing ? "Pause" : "Play");
    button.textContent = playing ? "❚❚" : "▶";
  }
}

function fill(select, values, label = String) {
  select.replaceChildren(...values.map(v => new Option(label(v), String(v))));
}

/** Every control shows the state (after a change, a preset, a reload); what cannot apply is disabled. */
function showState() {
  for (const id of ["dataset", "model", "activation", "regularization", "metric"]) $(id).value = state[id];
  for (const id of ["lr", "regRate", "momentum", "classes"]) {
    if (![...$(id).options].some(o => o.value === String(state[id]))) $(id).add(new Option(String(state[id])));
    $(id).value = String(state[id]);  // (a value a link holds that the menu does not offer is added to it)
  }
  for (const id of ["ratio", "noise", "samples", "batch", "k"]) {
    $(id).value = state[id];
    showValue(id, state[id]);
  }
  for (const id of ["showTest", "discretize"]) $(id).checked = state[id];
  $("point-split").value = state.pointSplit;
  [...$("classes").options].forEach(o => { o.disabled = !CLASSES[state.dataset].includes(Number(o.value)); });
  document.body.dataset.model = state.model;
  document.body.dataset.backprop = String(state.backprop);
  $("backprop").hidden = !state.backprop;
  $("backprop-toggle").setAttribute("aria-pressed", String(state.backprop));
  if (document.body.dataset.dataset !== state.dataset) $("own-data").open = state.dataset === "custom";
  document.body.dataset.dataset = state.dataset;
  const trains = state.model !== "knn", own = state.dataset === "custom";
  document.querySelectorAll(".trains select, .trains input").forEach(e => { e.disabled = !trains; });
  $("activation").disabled = !["mlp", "compare"].includes(state.model);  // the line and KNN have no hidden layer
  document.querySelectorAll(".generated select, .generated input, button.generated")
    .forEach(e => { e.disabled = own; });  // your own points: no generator's settings
  const hide = teacher.hidden() ?? state.hide;  // the teacher's, once the teacher has said
  document.querySelectorAll("[data-group]").forEach(e => { e.hidden = hide.includes(e.dataset.group); });
  network.build(state, data.classes);
  updatePointClasses();
  updateDigitsLink();
  teacher.apply();
  fitScreen();
}

function showValue(id, value) {
  $(`${id}-value`).textContent = id === "batch" && Number(value) === 0 ? "all" : id === "ratio" ? `${value}%` : value;
}

function updatePointClasses() {
  const classes = Math.max(state.classes, data.classes || 2);
  const select = $("point-class");
  if (select.options.length !== classes) fill(select, [...Array(classes).keys()], k => `class ${k}`);
  select.value = String(Math.min(state.pointClass, classes - 1));
}

/** The points as your own (Edit these points): the dataset's drawn points keep their split (training or test). */
function ownPoints() {
  if (state.dataset === "custom") return state.points;
  const round = p => [+p[0].toFixed(2), +p[1].toFixed(2), p[2]];
  return [...data.train.map(round), ...data.test.map(p => [...round(p), 1])];
}

/** A built-in dataset's points stay as they are: a click on its plane (a press beside the line included) says how to
 *  add points instead of turning the set-up into Your own points. */
function sayBuiltIn() {
  transient = `The points of ${FIELDS.dataset.labels[FIELDS.dataset.options.indexOf(state.dataset)]} stay as they ` +
    "are: points are added to Your own points. Press “Edit these points” (under Data) to make these points your own.";
  showNotices();
}

function addPoint(x1, x2) {
  if (state.dataset !== "custom") {
    sayBuiltIn();
    return;
  }
  if (![x1, x2].every(v => Number.isFinite(v) && Math.abs(v) <= DOMAIN[1])) {
    alert(`A point's x₁ and x₂ lie between ${DOMAIN[0]} and ${DOMAIN[1]}.`);
    return;
  }
  const points = ownPoints();
  if (points.length >= LIMITS.points) {
    alert(`At most ${LIMITS.points} points.`);
    return;
  }
  const point = [+x1.toFixed(2), +x2.toFixed(2), state.pointClass, ...(state.pointSplit === "test" ? [1] : [])];
  change({dataset: "custom", points: [...points, point], ...(point.length > 3 ? {showTest: true} : {})});
}

function exportCsv() {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([toCsv(data.train, data.test)], {type: "text/csv"}));
  link.download = "nnref-lab-points.csv";
  link.click();
}

async function importCsv(file) {
  const result = parseCsv(await file.text(), {domain: DOMAIN, limit: LIMITS.points});
  stats.csv = result;
  const report = importReport(result);
  if (result.points.length) {
    const tests = result.points.some(p => p.length > 3);
    change({dataset: "custom", points: result.points, ...(tests ? {showTest: true} : {})});
  }
  transient = report;  // said until the next action
  showNotices();
  $("import-csv").value = "";  // the same file can be imported again
}

/** The controls as the state's definition describes them: every menu's options and labels, every slider's range,
 *  the classes of each dataset, and one link per preset. */
function buildControls() {
  for (const id of ["model", "activation", "regularization", "metric", "dataset", "lr", "regRate", "momentum"]) {
    const field = FIELDS[id];
    fill($(id), field.options, v => field.labels ? field.labels[field.options.indexOf(v)] : String(v));
  }
  fill($("point-split"), FIELDS.pointSplit.options, v => FIELDS.pointSplit.labels[FIELDS.pointSplit.options.indexOf(v)]);
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

/** A new hash (a preset link, the browser's back button): its set-up, keeping the classroom's hidden controls
 *  unless the hash names its own. */
function followHash() {
  if (!location.hash.includes("=")) {  // a place on the page (#network-title), not a set-up: the set-up stays
    history.replaceState(null, "", location.pathname + location.search + toHash(state));
    return;
  }
  const hide = state.hide;
  const preset = new URLSearchParams(location.hash.slice(1)).get("preset");
  state = fromHash(location.hash);
  if (!new URLSearchParams(location.hash.slice(1)).has("hide")) state.hide = hide;
  history.replaceState(null, "", location.pathname + location.search + toHash(state));
  alert("");
  transient = "";
  showState();
  showPresetNote(preset);
  sendConfig();
  if (preset) send({type: "reset"});  // a preset starts at its own epoch 0, with a new loss curve
}

/** The digit page's link carries the token and this page's set-up, so its way back lands here unchanged. */
function updateDigitsLink() {
  const query = new URLSearchParams();
  if (token) query.set("token", token);
  $("digits-link").href = `/digits${query.size ? `?${query}` : ""}#from=${encodeURIComponent(toHash(state).slice(1))}`;
  query.set("from", toHash(state).slice(1));  // the /mnist page's own state is its hash: the set-up goes in the query
  $("mnist-link").href = `/mnist?${query}`;
}

/** P plays or pauses, S steps, R resets — unless a text field, a menu or a slider has the keys. */
function shortcut(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest?.("input, select, textarea")) return;
  const button = {p: "play", s: "step", r: "reset", b: "backprop-toggle", "[": "prev-point", "]": "next-point"}[
    event.key.toLowerCase()];
  if (button) {
    event.preventDefault();
    $(button).click();
  }
}

let tellName = () => {};

function bind() {
  buildControls();
  tellName = displayName($("student-name"), send);
  for (const id of ["model", "activation", "regularization", "metric"]) {
    $(id).addEventListener("change", () => change({[id]: $(id).value}));
  }
  for (const id of ["lr", "regRate", "momentum", "classes"]) {
    $(id).addEventListener("change", () => change({[id]: Number($(id).value)}));
  }
  $("dataset").addEventListener("change", () => {
    const dataset = $("dataset").value;
    const classes = CLASSES[dataset].includes(state.classes) ? state.classes : 2;
    change({dataset, classes, noise: NOISE[dataset] ?? state.noise, ...(dataset === "custom" ? {points: []} : {})});
  });
  for (const id of ["ratio", "noise", "samples", "batch", "k"]) {
    $(id).addEventListener("change", () => change({[id]: Number($(id).value)}));
    $(id).addEventListener("input", () => showValue(id, $(id).value));
  }
  for (const id of ["showTest", "discretize"]) {
    $(id).addEventListener("change", () => {
      state[id] = $(id).checked;
      history.replaceState(null, "", location.pathname + location.search + toHash(state));
      requestRedraw();
    });
  }
  $("play").addEventListener("click", () => { transient = ""; send({type: stats.playing ? "pause" : "play"}); });
  $("step").addEventListener("click", () => { transient = ""; send({type: "step"}); });
  $("reset").addEventListener("click", () => { alert(""); send({type: "reset"}); });
  $("reinit").addEventListener("click", () => { alert(""); send({type: "reinit"}); });
  $("regenerate").addEventListener("click", () => change({seed: Math.floor(Math.random() * 2 ** 31)}));
  $("point-class").addEventListener("change", () => { state.pointClass = Number($("point-class").value); });
  $("point-split").addEventListener("change", () => { state.pointSplit = $("point-split").value; });
  $("add-point").addEventListener("click", () => addPoint(Number($("point-x1").value), Number($("point-x2").value)));
  $("edit-points").addEventListener("click", () => {
    const points = ownPoints();
    change({dataset: "custom", points, ...(points.some(p => p.length > 3) ? {showTest: true} : {})});
  });
  $("clear-points").addEventListener("click", () => change({dataset: "custom", points: []}));
  $("import-csv").addEventListener("change", () => { if ($("import-csv").files[0]) importCsv($("import-csv").files[0]); });
  $("export-csv").addEventListener("click", exportCsv);
  $("export-model").addEventListener("click", () => send({type: "export"}));
  $("gradcheck").addEventListener("click", () => {
    $("gradcheck-result").textContent = "Checking the gradient …";
    send({type: "gradcheck"});
  });
  $("backprop-toggle").addEventListener("click", () => {
    change({backprop: !state.backprop});
    if (state.backprop) $("backprop-title").focus();
  });
  $("prev-point").addEventListener("click", () => stepInstance(-1));
  $("next-point").addEventListener("click", () => stepInstance(+1));
  $("apply-step").addEventListener("click", () => send({type: "apply"}));
  $("weight-editor").addEventListener("submit", (event) => { event.preventDefault(); submitEditor(); });
  $("weight-editor-close").addEventListener("click", closeEditor);
  $("weight-editor").addEventListener("keydown", (event) => { if (event.key === "Escape") closeEditor(); });
  for (const [id, source] of [["line-w1", 0], ["line-w2", 1], ["line-b", -1]]) {
    $(id).addEventListener("change", () => {
      const value = Number($(id).value);
      if (Number.isFinite(value)) typeWeights([[0, 0, source, value]]);
    });
  }
  for (const link of document.querySelectorAll(".skip a")) {  // a skip link moves the focus, not the set-up
    link.addEventListener("click", (event) => {
      event.preventDefault();
      document.querySelector(link.getAttribute("href")).focus();
    });
  }
  window.addEventListener("hashchange", followHash);
  window.addEventListener("keydown", shortcut);
  window.addEventListener("resize", fitScreen);
}

// ------------------------------------------------------------------------------------------------
// The backward pass view and weights by hand
// ------------------------------------------------------------------------------------------------
let dragged = false;  // a drag of the line just ended: the click that follows it is not a click on the plane

function planeAt(canvas, event) {
  const box = canvas.getBoundingClientRect();
  return toPlane(canvas, (event.clientX - box.left) * canvas.width / box.width,
                 (event.clientY - box.top) * canvas.height / box.height);
}

/** The instance of the backward pass: the training point clicked (within a point's size), or the place clicked,
 *  of the class chosen for new points. */
function pickInstance(x1, x2) {
  const near = data.train.map(p => [Math.hypot(p[0] - x1, p[1] - x2), p]).sort((a, b) => a[0] - b[0])[0];
  const point = near && near[0] < 0.25 ? near[1] : [+x1.toFixed(2), +x2.toFixed(2), state.pointClass];
  change({instance: [point[0], point[1], point[2]]});
}

/** The next (or previous) training point as the instance. */
function stepInstance(delta) {
  if (!data.train.length) return;
  const [x1, x2] = state.instance;
  const at = data.train.findIndex(p => state.instance.length && p[0] === x1 && p[1] === x2);
  const next = data.train[((at < 0 ? (delta > 0 ? -1 : 0) : at) + delta + data.train.length) % data.train.length];
  change({backprop: true, instance: [next[0], next[1], next[2]]});
}

/** Weights typed by hand ([layer, neuron, input, value]; input −1 the bias): the server sets them at once, the
 *  address keeps them. */
function typeWeights(entries) {
  const key = e => e.slice(0, 3).join(":");
  const kept = state.weights.filter(w => !entries.some(e => key(e) === key(w)));
  change({weights: [...kept, ...entries]});
}

let editing = null;  // [layer, neuron] of the weight editor

/** The editor of one neuron's weights and bias: a number for each link into it, and its bias. */
function openEditor(layer, neuron, source) {
  const weights = shown?.header.network?.layers?.[layer];
  if (!weights) return;
  editing = [layer, neuron];
  const names = layer === 0 ? state.inputs.map(f => FEATURE_LABELS[f]) : weights.w[neuron].map((_, s) => `neuron ${s + 1}`);
  const output = layer === state.hidden.length || state.model !== "mlp" && state.model !== "compare";
  $("weight-editor-title").textContent = `${output ? "Output" : `Layer ${layer + 1}`}, neuron ${neuron + 1}: its weights`;
  const fields = [...weights.w[neuron].map((w, s) => [`weight from ${names[s]}`, s, w]), ["bias", -1, weights.b[neuron]]];
  $("weight-editor-fields").replaceChildren(...fields.map(([name, s, value]) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"), {type: "number", step: "any", value: String(value)});
    input.dataset.source = s;
    label.append(name, " ", input);
    return label;
  }));
  $("weight-editor").hidden = false;
  const inputs = [...$("weight-editor-fields").querySelectorAll("input")];
  (source === undefined ? inputs[0] : inputs[source]).focus();
}

function submitEditor() {
  const [layer, neuron] = editing;
  const entries = [...$("weight-editor-fields").querySelectorAll("input")]
    .map(input => [layer, neuron, Number(input.dataset.source), Number(input.value)])
    .filter(e => Number.isFinite(e[3]));
  typeWeights(entries);
}

function closeEditor() {
  $("weight-editor").hidden = true;
  if (editing) document.querySelector(`.unit[data-layer="${editing[0]}"][data-neuron="${editing[1]}"]`)?.focus();
  editing = null;
}

/** The line's w₁, w₂ and b as numbers to type (the line model on X₁, X₂). */
function showLineWeights(header) {
  const line = header.models.find(m => m.line)?.line;
  if ($("line-weights").hidden !== !line) $("line-weights").hidden = !line;  // (an attribute set anew restyles)
  if (!line) return;
  for (const [id, value] of [["line-w1", line.w[0]], ["line-w2", line.w[1]], ["line-b", line.b]]) {
    if (document.activeElement !== $(id)) $(id).value = (+value.toFixed(3)).toString();
  }
}

/** Drag the line on the plane: from its middle it moves parallel to itself, from an end it turns about the other
 *  end; ‖w‖ (how sharp the sigmoid is) stays. The new w and b go to the server as the drag goes. */
function dragLine(canvas) {
  let grab = null, last = 0;
  canvas.addEventListener("pointerdown", (event) => {
    const line = shown?.header.models.find(m => m.line)?.line;
    if (!line || state.backprop) return;
    grab = grabOf(canvas, line, planeAt(canvas, event));
    dragged = false;
    if (grab) canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!grab) return;
    dragged = true;
    const [w, b] = grab(planeAt(canvas, event));
    if (performance.now() - last > 60) {
      last = performance.now();
      typeWeights([[0, 0, 0, w[0]], [0, 0, 1, w[1]], [0, 0, -1, b]].map(e => [e[0], e[1], e[2], +e[3].toFixed(4)]));
    }
  });
  canvas.addEventListener("pointerup", (event) => {
    if (grab && dragged) {
      const [w, b] = grab(planeAt(canvas, event));
      typeWeights([[0, 0, 0, w[0]], [0, 0, 1, w[1]], [0, 0, -1, b]].map(e => [e[0], e[1], e[2], +e[3].toFixed(4)]));
    }
    grab = null;
    setTimeout(() => { dragged = false; });
  });
}

/** How a press at ``at`` moves the line w·x + b = 0 (null: the press is not on it). */
function grabOf(canvas, line, at) {
  const [w1, w2] = line.w, norm = Math.hypot(w1, w2);
  if (norm < 1e-9) return null;
  const distance = Math.abs(w1 * at[0] + w2 * at[1] + line.b) / norm;  // in plane units
  const pixel = (DOMAIN[1] - DOMAIN[0]) / Number(canvas.dataset.side);  // (one pixel of the plane's side)
  const ends = lineEnds(line);
  const end = ends.findIndex(e => Math.hypot(e[0] - at[0], e[1] - at[1]) < 14 * pixel);
  if (end >= 0) {  // turn about the other end
    const pivot = ends[1 - end];
    return (p) => {
      const d = [p[0] - pivot[0], p[1] - pivot[1]], len = Math.hypot(...d) || 1;
      const w = [-d[1] / len * norm, d[0] / len * norm];
      if (w[0] * w1 + w[1] * w2 < 0) { w[0] = -w[0]; w[1] = -w[1]; }  // the same side stays class 1
      return [w, -(w[0] * pivot[0] + w[1] * pivot[1])];
    };
  }
  if (distance > 8 * pixel) return null;
  return (p) => [[w1, w2], -(w1 * p[0] + w2 * p[1])];  // parallel, through the pointer
}

function lineEnds(line) {
  const [w1, w2] = line.w, b = line.b, [lo, hi] = DOMAIN, ends = [];
  if (Math.abs(w2) > 1e-12) for (const x of [lo, hi]) ends.push([x, -(w1 * x + b) / w2]);
  if (Math.abs(w1) > 1e-12) for (const y of [lo, hi]) ends.push([-(w2 * y + b) / w1, y]);
  return ends.filter(([x, y]) => x >= lo - 1e-9 && x <= hi + 1e-9 && y >= lo - 1e-9 && y <= hi + 1e-9).slice(0, 2);
}

/** A preset's note (the worked example's rounding, what to do by hand): said once — under Apply while the backward
 *  pass is open, else among the notices — until another set-up replaces the preset's. */
function showPresetNote(name) {
  presetNote = PRESETS[name]?.note ?? "";
  showNotices();
}
let presetNote = "";

/** The page-only settings (show test data, discretize) redraw the last frame without asking the server. */
function requestRedraw() {
  if (shown) render(shown);
}

bind();
showPresetNote(new URLSearchParams(location.hash.slice(1)).get("preset"));
history.replaceState(null, "", location.pathname + location.search + toHash(state));
showState();
connect();
