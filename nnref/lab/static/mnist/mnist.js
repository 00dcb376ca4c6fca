// The /mnist page: the controls change the one state object (kept in the URL) and tell the server; the server
// trains nnref's model on MNIST and sends frames, drawn as they come (the latest wins; every frame's losses count).

import {FIELDS, fromHash, sanitize, toHash} from "./state.js";
import {PageSocket} from "../socket.js";
import {RunChart} from "./chart.js";
import {buildConfusion, buildGallery, buildTemplates, paintFilters, showConfusion, showGallery, showLayers,
        signedImage} from "./pictures.js";
import {bindPad, showDigit} from "./digit.js";
import {Teacher, displayName} from "../lab/teacher.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const query = token ? `?token=${encodeURIComponent(token)}` : "";
// the playground's set-up the teacher came from (its link here carries it as ?from=…): the way back returns to it
const from = new URLSearchParams(location.search).get("from");
const back = from ? `#${from.replace(/^#/, "")}` : "";

let state = fromHash(location.hash);
let socket = null, latest = null, drawing = false, version = 0, unacknowledged = 0, generation = null;
let labels = [], templates = [], transient = "";
// What a test or a benchmark reads.
const stats = window.nnrefMnist = {frames: 0, connected: false, playing: false, step: 0, images: 0, epoch: 0,
                                   version: 0, sent: 0, valAccuracy: null, valStep: null, valHistory: [],
                                   playedAt: null, test: null, gallery: null, labels: [], digit: null, errors: [],
                                   notices: [], unavailable: null, loading: null, state: () => state, files: 0};
const chart = new RunChart($("chart"));
const teacher = new Teacher($("teacher-line"));
let tellName = () => {};

// ------------------------------------------------------------------------------------------------
// The connection
// ------------------------------------------------------------------------------------------------
function connect() {
  socket = new PageSocket("/ws/mnist", {
    open() { stats.connected = true; sendConfig(); tellName(); },
    close() {
      stats.connected = false;
      setPlaying(false);
      document.body.dataset.connected = "false";
      if (!stats.unavailable && !stats.full) alert("The connection to nnref lab closed: the server stopped, or the " +
                                                   "network went. Start nnref lab again and reload this page.");
    },
    json: receive,
    frame: receiveBinary,
  });
}

function send(message) {
  socket?.send(message);
}

function sendBinary(header, bytes) {
  socket?.sendBinary(header, bytes);
}

function sendConfig() {
  version += 1;
  stats.sent = version;
  send({type: "config", version, state});
}

function receive(message) {
  if (message.type === "error") {
    stats.errors.push(message.message);
    alert(message.message);
  } else if (message.type === "notice") {
    transient = message.message;
    showNotices();
  } else if (message.type === "full") {
    stats.full = true;
    alert(message.message);
  } else if (message.type === "teacher") {
    teacher.receive(message);  // (the MNIST page has no set-up to open: the line, and Play held while paused)
    stats.teacher = message;
    teacher.apply();
  } else if (message.type === "loading") {
    stats.loading = message.message;
    $("loading").textContent = message.message;
    $("loading").hidden = false;
  } else if (message.type === "unavailable") {
    stats.unavailable = message.message;
    $("unavailable-message").textContent = message.message;
    $("unavailable").hidden = false;
    $("columns").hidden = true;
    $("loading").hidden = true;
    document.querySelectorAll(".bar button, .bar select").forEach(e => { e.disabled = true; });
  }
}

function receiveBinary(header, payload) {
  if (header.type === "file") {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([payload]));
    link.download = header.name;
    link.click();
    stats.files += 1;
    return;
  }
  if (header.type === "gallery") {
    $("loading").hidden = true;
    labels = stats.labels = header.labels;
    buildGallery($("gallery"), labels, payload, (i) => send({type: "inspect", index: i}));
    return;
  }
  if (header.generation !== generation) {  // a new model: new curves
    generation = header.generation;
    chart.clear();
    stats.valHistory = [];
  }
  chart.addLosses(header.losses);  // every frame's losses count, drawn or not
  if (header.val) chart.addValidation(header.val.step, header.val.loss, header.val.accuracy);
  if (header.version < stats.sent) {  // made before the latest change reached the server: acknowledged, not drawn
    send({type: "ready"});
    return;
  }
  latest = {header, payload};
  unacknowledged += 1;
  if (!drawing) {
    drawing = true;
    requestAnimationFrame(draw);
  }
}

// ------------------------------------------------------------------------------------------------
// Drawing a frame
// ------------------------------------------------------------------------------------------------
function draw() {
  drawing = false;
  if (!latest) return;
  const {header, payload} = latest;
  latest = null;
  render(header, payload);
  stats.frames += 1;
  for (; unacknowledged > 0; unacknowledged--) send({type: "ready"});
}

function render(header, payload) {
  Object.assign(stats, {step: header.step, images: header.images, epoch: header.epoch, version: header.version,
                        test: header.test, gallery: header.gallery, digit: header.digit ?? null,
                        generation: header.generation});
  $("step-count").textContent = header.step.toLocaleString("en");
  $("images-count").textContent = header.images.toLocaleString("en");
  $("epoch-count").textContent = header.epoch.toFixed(2);
  showScores(header);
  const t = header.templates, pictures = payload.subarray(0, t.count * 784);
  document.body.dataset.templates = t.kind;
  if (t.kind === "classes") {
    templates.forEach((canvas, k) => {
      canvas.getContext("2d").putImageData(signedImage(pictures.subarray(k * 784, (k + 1) * 784)), 0, 0);
    });
  } else {
    paintFilters($("filters"), pictures, t.count);
  }
  $("templates-text").textContent = (t.kind === "classes" ?
    "The ten rows of W, one 28 × 28 template per class: blue pixels vote for the class, orange ones against. " :
    `The first layer's filters (the first ${t.count} of its units): blue weights positive, orange negative. `) +
    decayText();
  $("filters").hidden = t.kind === "classes";
  $("templates").hidden = t.kind !== "classes";
  showGallery($("gallery"), labels, header.gallery);
  showLayers($("layers-body"), header.layers);
  if (header.digit) showDigit(header.digit, payload.subarray(t.count * 784));
  stats.notices = header.notices;
  showNotices();
  chart.draw();
  setPlaying(header.playing && stats.connected);
}

function percent(v) {
  return v === null || v === undefined ? "—" : `${(100 * v).toFixed(1)}%`;
}

function showScores(header) {
  const val = header.val;
  if (val) {
    $("val-accuracy").textContent = percent(val.accuracy);
    if (val.step !== stats.valStep) {
      stats.valStep = val.step;
      stats.valAccuracy = val.accuracy;
      if (stats.playedAt !== null) stats.valHistory.push([performance.now() - stats.playedAt, val.accuracy]);
      showConfusion($("confusion"), val.confusion);
    }
  }
  const last = chart.train.at(-1);
  $("losses").textContent = `Training loss ${last ? last[1].toFixed(3) : "—"} · validation loss ` +
    `${val?.loss?.toFixed(3) ?? "—"} (${val?.images ?? "—"} validation digits)`;
  const test = header.test;
  $("test-accuracy").textContent = test && !header.playing ?
    `${percent(test.accuracy)} (${test.images.toLocaleString("en")} digits, step ${test.step.toLocaleString("en")})` :
    header.playing ? "on Pause" : "—";
}

function showNotices() {
  const items = [...(transient ? [transient] : []), ...stats.notices.filter(n => n !== transient)];
  const list = $("notices");
  if (list.textContent !== items.join("")) {
    list.replaceChildren(...items.map(t => Object.assign(document.createElement("li"), {textContent: t})));
  }
}

function alert(message) {
  $("alert").textContent = message;
  $("alert").hidden = !message;
}

function setPlaying(playing) {
  stats.playing = playing;
  $("play").setAttribute("aria-label", playing ? "Pause" : "Play");
  $("play").textContent = playing ? "❚❚" : "▶";
}

// ------------------------------------------------------------------------------------------------
// Controls
// ------------------------------------------------------------------------------------------------
function change(changes) {
  Object.assign(state, changes);
  state = sanitize(state);
  history.replaceState(null, "", location.pathname + location.search + toHash(state));
  alert("");
  transient = "";
  showState();
  sendConfig();
}

function fill(select, values, label = String) {
  select.replaceChildren(...values.map(v => new Option(label(v), String(v))));
}

function choose(select, value) {
  if (![...select.options].some(o => o.value === String(value))) select.add(new Option(String(value)));
  select.value = String(value);  // (a value a link holds that the menu does not offer is added to it)
}

/** Every control shows the state; what cannot apply (the MLP's settings for softmax regression) is disabled. */
function showState() {
  for (const id of ["model", "activation", "lr", "momentum", "batch", "decay"]) choose($(id), state[id]);
  $("layers").value = String(state.hidden.length);
  choose($("units1"), state.hidden[0]);
  choose($("units2"), state.hidden[1] ?? 50);
  document.body.dataset.model = state.model;
  document.body.dataset.layers = String(state.hidden.length);
  document.querySelectorAll(".mlp-only select").forEach(e => { e.disabled = state.model !== "mlp"; });
  $("units2").disabled = state.model !== "mlp" || state.hidden.length < 2;
  const links = {"playground-link": "/", "digits-link": "/digits"};
  for (const [id, path] of Object.entries(links)) $(id).href = `${path}${query}${id === "playground-link" ? back : ""}`;
}

/** What the weight decay does to the pictures, and what it costs (measured: scripts/mnist_decay.py). */
function decayText() {
  return state.decay > 0 ?
    `Weight decay λ = ${state.decay} fades the pixels no digit lights: the templates read as digits (λ = 0.01 ` +
    "costs 0.4% of test accuracy after an epoch, measured)." :
    "Without weight decay the pixels no digit lights keep their random first weights: the noise never fades.";
}

function buildControls() {
  for (const id of ["model", "activation", "lr", "momentum", "batch", "decay"]) {
    const field = FIELDS[id];
    fill($(id), field.options, v => field.labels ? field.labels[field.options.indexOf(v)] : String(v));
  }
  for (const id of ["units1", "units2"]) fill($(id), FIELDS.hidden.options);
  templates = buildTemplates($("templates"));
  buildConfusion($("confusion"));
}

function hidden() {
  const first = Number($("units1").value);
  return $("layers").value === "2" ? [first, Number($("units2").value)] : [first];
}

function shortcut(event) {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest?.("input, select, textarea")) return;
  const button = {p: "play", s: "step", r: "reset"}[event.key.toLowerCase()];
  if (button) {
    event.preventDefault();
    $(button).click();
  }
}

function bind() {
  buildControls();
  tellName = displayName($("student-name"), send);
  $("model").addEventListener("change", () => change({model: $("model").value}));
  $("activation").addEventListener("change", () => change({activation: $("activation").value}));
  for (const id of ["lr", "momentum", "batch", "decay"]) $(id).addEventListener("change", () => change({[id]: Number($(id).value)}));
  for (const id of ["layers", "units1", "units2"]) $(id).addEventListener("change", () => change({hidden: hidden()}));
  $("play").addEventListener("click", () => {
    transient = "";
    if (!stats.playing) stats.playedAt = performance.now();
    send({type: stats.playing ? "pause" : "play"});
  });
  $("step").addEventListener("click", () => { transient = ""; send({type: "step"}); });
  $("reset").addEventListener("click", () => { alert(""); send({type: "reset"}); });
  $("reinit").addEventListener("click", () => { alert(""); send({type: "reinit"}); });
  $("export").addEventListener("click", () => send({type: "export"}));
  bindPad($("pad"), $("clear"), sendBinary);
  window.addEventListener("keydown", shortcut);
  window.addEventListener("hashchange", () => {
    state = fromHash(location.hash);
    showState();
    sendConfig();
  });
}

bind();
history.replaceState(null, "", location.pathname + location.search + toHash(state));
showState();
connect();
