// The class, as the teacher sees it: every page open on the lab as a tile, updated a few times a second by the
// server (nnref/lab/teacher.py), and the teacher's hand on all of them.  Each tile's decision boundary is drawn here
// from the page's weights, by the playground's own network code (../lab/model.js) and colours (../lab/heatmap.js).

import {DEFINITION, PRESETS} from "../lab/state.js";
import {fieldImage, paint, signedImage} from "../lab/heatmap.js";
import {neuronBytes, probabilityBytes, trace} from "../lab/model.js";

const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
const TILE = 24, ONE = 108, EVERY = 3;  // grid points per side: a tile's map, the large map (and its neurons')
const GROUP_LABELS = {training: "Play and Step", model: "the model", rate: "learning rate and batch",
                      activation: "activation", regularization: "regularisation", knn: "k and distance",
                      data: "the data", network: "the network", view: "view options", checks: "checks and export"};

let socket = null, latest = null, rules = {paused: false, hidden: [], locked: null}, open = null;
const snapshots = [], drawn = new Map();  // seat → the key of what its tile's map shows
// What a test reads: updates received, tiles shown, lines said.
const stats = window.nnrefClass = {updates: 0, tiles: 0, connected: false, lines: [], errors: [], latest: () => latest};

// ------------------------------------------------------------------------------------------------
// The connection
// ------------------------------------------------------------------------------------------------
function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/class${token ? `?token=${encodeURIComponent(token)}` : ""}`);
  socket.addEventListener("open", () => { stats.connected = true; });
  socket.addEventListener("close", () => {
    stats.connected = false;
    $("summary").textContent = "The connection to nnref lab closed: start it again and reload this page.";
  });
  socket.addEventListener("message", (event) => receive(JSON.parse(event.data)));
}

function send(message) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
}

function receive(message) {
  if (message.type === "class") {
    latest = message;
    rules = message.rules;
    stats.updates += 1;
    render();
  } else if (message.type === "done") {
    if (message.line) stats.lines.push(message.line);
    $("last-line").textContent = message.line ? `Every page reads: “${message.line}”` : "";
  } else if (message.type === "error" || message.type === "full") {
    stats.errors.push(message.message);
    $("last-line").textContent = message.message;
  }
}

// ------------------------------------------------------------------------------------------------
// The tiles
// ------------------------------------------------------------------------------------------------
const percent = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)}%`);
const threshold = () => Number($("threshold").value) / 100;

function chosen(pages) {
  const keep = {all: () => true, playground: p => p.kind === "playground", mnist: p => p.kind === "mnist",
                playing: p => p.playing, diverged: p => p.diverged, above: p => (p.accuracy ?? -1) >= threshold()};
  const order = {joined: (a, b) => a.seat - b.seat, accuracy: (a, b) => (b.accuracy ?? -1) - (a.accuracy ?? -1),
                 setup: (a, b) => a.setup.localeCompare(b.setup) || a.seat - b.seat,
                 diverged: (a, b) => b.diverged - a.diverged || a.seat - b.seat};
  return pages.filter(keep[$("filter").value]).sort(order[$("sort").value]);
}

function render() {
  const pages = latest.pages;
  const above = pages.filter(p => (p.accuracy ?? -1) >= threshold()).length;
  $("summary").textContent = `${pages.length} page${pages.length === 1 ? "" : "s"} open · ` +
    `${pages.filter(p => p.playing).length} playing · ${above} at or above ${$("threshold").value}% test ` +
    `accuracy · ${pages.filter(p => p.diverged).length} diverged`;
  const shown = chosen(pages);
  const list = $("tiles"), items = new Map([...list.children].map(li => [Number(li.dataset.seat), li]));
  const tiles = shown.map(page => tile(items.get(page.seat), page));
  // (the same tiles in the same order stay where they are: a tile that has the keyboard's focus keeps it)
  if (tiles.length !== list.children.length || tiles.some((li, i) => list.children[i] !== li)) {
    list.replaceChildren(...tiles);
  }
  for (const seat of drawn.keys()) if (!pages.some(p => p.seat === seat)) drawn.delete(seat);
  stats.tiles = shown.length;
  showRules();
  if (open && open.live) {
    const page = pages.find(p => p.seat === open.page.seat);
    if (page) showOne(page, true);
  }
}

function tile(li, page) {
  if (!li) {
    li = document.createElement("li");
    li.innerHTML = `<button type="button" class="tile"><span class="who"></span><canvas class="map" width="${TILE}"
      height="${TILE}" aria-hidden="true"></canvas><span class="accuracy"></span><span class="epoch"></span>
      <span class="setup"></span><canvas class="curve" width="120" height="18" aria-hidden="true"></canvas></button>`;
    li.querySelector("button").addEventListener("click", () => {
      const now = latest.pages.find(p => p.seat === Number(li.dataset.seat));
      if (now) showOne(now, true);
    });
  }
  li.dataset.seat = page.seat;
  const button = li.querySelector("button"), marks = [];
  if (page.diverged) marks.push("diverged");
  if (!page.playing) marks.push("paused");
  if (page.stale) marks.push("nothing changed for a while");
  button.classList.toggle("diverged", page.diverged);
  li.querySelector(".who").textContent = page.label;
  li.querySelector(".accuracy").textContent = percent(page.accuracy);
  li.querySelector(".epoch").textContent = `epoch ${page.epoch.toFixed(1)}` +
    (marks.length ? ` · ${marks.join(", ")}` : "");
  li.querySelector(".setup").textContent = page.preset ? `${page.preset}: ${page.setup}` : page.setup;
  button.setAttribute("aria-label", `${page.label}: ${page.preset ?? page.setup}, test accuracy ` +
    `${percent(page.accuracy)}, epoch ${page.epoch.toFixed(1)}${marks.length ? `, ${marks.join(", ")}` : ""}. ` +
    "Show it large.");
  const key = JSON.stringify([page.epoch, page.setup, page.network?.layers?.[0]?.b]);
  if (drawn.get(page.seat) !== key) {
    drawn.set(page.seat, key);
    drawMap(li.querySelector("canvas.map"), page, TILE);
  }
  drawCurve(li.querySelector("canvas.curve"), page.curve);
  return li;
}

/** The page's decision boundary from its weights (blank for KNN alone and the MNIST page: no plane to draw). */
function drawMap(canvas, page, n) {
  const ctx = canvas.getContext("2d");
  if (!page.network) {
    ctx.fillStyle = "#eeeeee";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    return null;
  }
  const {probs, hidden} = trace(page.network, page.classes, n, EVERY);
  paint(canvas, fieldImage(probabilityBytes(probs), n, page.classes, false));
  return hidden;
}

function drawCurve(canvas, curve) {
  const ctx = canvas.getContext("2d"), w = canvas.width, h = canvas.height;
  ctx.clearRect(0, 0, w, h);
  const losses = (curve ?? []).map(p => p.at(-1)).filter(Number.isFinite);
  if (losses.length < 2) return;
  const top = Math.max(...losses), bottom = Math.min(0, ...losses);
  ctx.strokeStyle = "#0b5394";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  losses.forEach((v, i) => {
    const x = (i / (losses.length - 1)) * (w - 2) + 1, y = h - 1 - ((v - bottom) / (top - bottom || 1)) * (h - 2);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  });
  ctx.stroke();
}

// ------------------------------------------------------------------------------------------------
// One page, large, for the projector; snapshots
// ------------------------------------------------------------------------------------------------
function label(page) {
  return $("names").checked ? page.label : `Student ${page.seat}`;
}

function showOne(page, live, at = null) {
  open = {page, live, at};
  $("one-title").textContent = label(page);
  $("one-when").textContent = live ? "live" : `a snapshot, kept at ${at.toLocaleTimeString()}`;
  $("snapshot").hidden = !live;
  $("one-setup").textContent = page.preset ? `${page.preset} — ${page.setup}` : page.setup;
  $("one-scores").textContent = `test accuracy ${percent(page.accuracy)} · epoch ${page.epoch.toFixed(1)}` +
    (page.diverged ? " · diverged" : page.playing ? " · playing" : " · paused");
  const hidden = drawMap($("one-map"), page, ONE);
  drawCurve($("one-curve"), page.curve);
  showNeurons(page, hidden);
  if (!$("one").open) $("one").showModal();
}

function showNeurons(page, hidden) {
  const box = $("one-network");
  if (!hidden || !page.network) {
    box.replaceChildren();
    return;
  }
  const m = Math.ceil(ONE / EVERY), widths = page.network.layers.map(layer => layer.w.length);
  const bytes = neuronBytes(hidden, widths, m);
  box.replaceChildren(...bytes.map((layer, l) => {
    const column = document.createElement("div");
    column.className = "layer";
    for (let j = 0; j < widths[l]; j++) {
      const canvas = document.createElement("canvas");
      canvas.width = canvas.height = m;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `hidden layer ${l + 1}, neuron ${j + 1}`);
      paint(canvas, signedImage(layer.subarray(j * m * m, (j + 1) * m * m), m));
      column.append(canvas);
    }
    return column;
  }));
}

function keepSnapshot() {
  const at = new Date(), page = structuredClone(open.page);
  snapshots.push({page, at});
  const button = document.createElement("button");
  button.type = "button";
  button.addEventListener("click", () => showOne(page, false, at));
  const item = document.createElement("li");
  item.append(button);
  item.dataset.seat = page.seat;
  $("snapshots").append(item);
  $("snapshots-section").hidden = false;
  relabelSnapshots();
}

function relabelSnapshots() {
  [...$("snapshots").children].forEach((item, i) => {
    const {page, at} = snapshots[i];
    item.firstChild.textContent = `${label(page)} · ${at.toLocaleTimeString()}`;
  });
}

// ------------------------------------------------------------------------------------------------
// The teacher's hand
// ------------------------------------------------------------------------------------------------
function showRules() {
  $("pause").textContent = rules.paused ? "Let the class play" : "Pause the class";
  $("pause").setAttribute("aria-pressed", String(rules.paused));
  $("lock").textContent = rules.locked ? `Free the class (locked on ${PRESETS[rules.locked].title})` :
    "Lock the class on it";
  $("lock").setAttribute("aria-pressed", String(Boolean(rules.locked)));
  for (const box of $("hide").querySelectorAll("input")) box.checked = rules.hidden.includes(box.value);
}

function bind() {
  $("preset").replaceChildren(...Object.entries(PRESETS).map(([id, p]) => new Option(p.title, id)));
  $("hide").append(...DEFINITION.fields.hide.options.map(group => {
    const item = document.createElement("label");
    item.className = "check";
    item.innerHTML = `<input type="checkbox" value="${group}"> ${GROUP_LABELS[group] ?? group}`;
    item.querySelector("input").addEventListener("change", () => send({type: "hide", groups:
      [...$("hide").querySelectorAll("input:checked")].map(box => box.value)}));
    return item;
  }));
  $("send").addEventListener("click", () => send({type: "send", preset: $("preset").value,
                                                   same_weights: $("same-weights").checked}));
  $("lock").addEventListener("click", () => send(rules.locked ? {type: "free"} : {type: "lock",
                                                                                  preset: $("preset").value}));
  $("pause").addEventListener("click", () => send({type: rules.paused ? "play" : "pause"}));
  for (const id of ["sort", "filter", "threshold"]) $(id).addEventListener("input", () => latest && render());
  $("names").addEventListener("change", () => {
    send({type: "names", shown: $("names").checked});
    relabelSnapshots();
    if (open) $("one-title").textContent = label(open.page);
  });
  $("snapshot").addEventListener("click", keepSnapshot);
  $("close-one").addEventListener("click", () => $("one").close());
  $("one").addEventListener("close", () => {  // (nothing of the page stays behind: no name once names are hidden)
    open = null;
    $("one-title").textContent = "";
  });
}

bind();
connect();
