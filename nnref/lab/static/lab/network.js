// The network as TensorFlow Playground draws it: the inputs, each hidden neuron with its picture of the plane,
// and the links — width and colour the weight's size and sign (orange negative, blue positive), the value on
// hover.  Layers and neurons are added and removed with buttons.

import {COLOURS, FEATURE_LABELS, FEATURES, LIMITS} from "./state.js";
import {imageFor, inputBytes, paint, signedImage} from "./heatmap.js";

const NODE = 36, GAP = 10, TOP = 56, COLUMN = 96, LEFT = 76;  // LEFT: room for the inputs' names
const SVG = "http://www.w3.org/2000/svg";

/** An element with attributes and text; ``style`` is set through the CSSOM (the page's Content Security Policy
 *  allows no inline style attributes). */
function element(tag, attributes = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attributes)) {
    if (k === "style") Object.assign(e.style, v);
    else e.setAttribute(k, v);
  }
  if (text) e.textContent = text;
  return e;
}

export class NetworkView {
  /** ``root``: the element to draw into; ``bar``: where the add/remove-layer buttons go; ``on``: {input(feature),
   *  addLayer(), removeLayer(), neuron(layer, ±1)}. */
  constructor(root, bar, on) {
    this.root = root;
    this.bar = bar;
    this.on = on;
    this.tooltip = element("div", {class: "tooltip", role: "tooltip", id: "link-tooltip", hidden: ""});
    this.shape = "";
    // the neurons: one stop of the Tab order (a roving focus), the arrow keys between them, Enter types weights
    root.addEventListener("keydown", (event) => this.key(event));
    root.addEventListener("focusin", (event) => this.explain(event.target));
    root.addEventListener("focusout", () => { this.tooltip.hidden = true; });
    root.addEventListener("click", (event) => {
      const node = event.target.closest(".unit");
      if (node) this.on.edit(Number(node.dataset.layer), Number(node.dataset.neuron));
    });
  }

  /** Rebuild the drawing for a state's inputs, hidden layers and classes (when any of them changes). */
  build(state, classes) {
    const shape = JSON.stringify([state.inputs, state.hidden, classes, state.model]);
    if (shape === this.shape) return;
    this.shape = shape;
    this.state = state;
    const focused = document.activeElement;  // the control just used keeps the focus through the rebuild
    const keep = (this.root.contains(focused) || this.bar.contains(focused)) ? focused.id : null;
    const hidden = ["knn", "line"].includes(state.model) ? [] : state.hidden;
    const outputs = classes === 2 ? 1 : classes;
    this.columns = [FEATURES.length, ...hidden, outputs];
    const width = LEFT + COLUMN * (this.columns.length - 1) + NODE + 20;
    const height = TOP + Math.max(...this.columns) * (NODE + GAP) + 10;
    this.root.replaceChildren();
    this.root.style.width = `${width}px`;
    this.root.style.height = `${height}px`;
    this.svg = document.createElementNS(SVG, "svg");
    this.svg.setAttribute("width", width);
    this.svg.setAttribute("height", height);
    this.svg.setAttribute("class", "links");
    this.svg.setAttribute("aria-hidden", "true");
    this.root.append(this.svg, this.tooltip);
    this.links = [];
    this.styles = [];  // each link's width and colour as last set
    this.thumbs = [];
    this.drawLayers(hidden, state.model);  // (first in the page's order: "+ layer", then each layer's "+ neuron")
    this.drawInputs(state);
    if (state.model !== "knn") {  // k-nearest neighbours: the inputs, and no network
      this.drawOutputs(outputs);
      this.drawLinks(state);
    }
    if (keep) this.refocus(keep);
  }

  /** Focus the control of this id again — or, where it is gone or disabled (a layer removed, a layer full), the
   *  nearest one that still works. */
  refocus(id) {
    const again = document.getElementById(id);
    if (again && !again.disabled) {
      again.focus();
      return;
    }
    const [kind, layer] = id.split(":");
    const fallbacks = kind.startsWith("neuron") ? [`neuron-more:${layer}`, `neuron-fewer:${layer}`] : [];
    const next = [...fallbacks, "add-layer", "remove-layer"].map(f => document.getElementById(f)).find(e => e && !e.disabled);
    next?.focus();
  }

  position(column, row) {
    return [LEFT + column * COLUMN, TOP + row * (NODE + GAP)];
  }

  drawInputs(state) {
    const head = element("div", {class: "layer-head", style: {left: `${LEFT - 60}px`, top: `0px`, width: `${NODE + 60}px`}});
    head.append(element("span", {class: "layer-title"}, "Inputs"));
    this.root.append(head);
    FEATURES.forEach((feature, row) => {
      const [x, y] = this.position(0, row);
      const on = state.inputs.includes(feature);
      const node = element("div", {class: `node input${on ? "" : " off"}`, style: {left: `${x}px`, top: `${y}px`}});
      const box = element("input", {type: "checkbox", id: `input-${row}`, "aria-label": `Input ${FEATURE_LABELS[feature]}`});
      box.checked = on;
      box.addEventListener("change", () => this.on.input(feature));
      const canvas = element("canvas", {width: 50, height: 50, "aria-hidden": "true"});
      paint(canvas, signedImage(inputBytes(feature, 50), 50));
      const label = element("label", {for: `input-${row}`, class: "node-label"}, FEATURE_LABELS[feature]);
      node.append(canvas, box, label);
      this.root.append(node);
    });
  }

  drawLayers(hidden, model) {
    const fixed = model === "knn" || model === "line";
    const add = element("button", {type: "button", id: "add-layer", "aria-label": "Add layer"}, "+ layer");
    const remove = element("button", {type: "button", id: "remove-layer", "aria-label": "Remove layer"}, "− layer");
    add.disabled = fixed || hidden.length >= LIMITS.layers;
    remove.disabled = fixed || hidden.length === 0;
    add.addEventListener("click", () => this.on.addLayer());
    remove.addEventListener("click", () => this.on.removeLayer());
    const count = {knn: "k-nearest neighbours keep the points: no network",
                   line: "the line: the inputs straight to the output"}[model] ??
      `${hidden.length} hidden layer${hidden.length === 1 ? "" : "s"}`;
    this.bar.replaceChildren(add, remove, element("span", {class: "layer-count"}, count));
    hidden.forEach((size, layer) => {
      const [x] = this.position(layer + 1, 0);
      const head = element("div", {class: "layer-head", style: {left: `${x - 14}px`, top: `22px`, width: `${NODE + 28}px`}});
      const more = element("button", {type: "button", class: "small", id: `neuron-more:${layer}`,
                                       "aria-label": `Add neuron to layer ${layer + 1}`}, "+");
      const fewer = element("button", {type: "button", class: "small", id: `neuron-fewer:${layer}`,
                                        "aria-label": `Remove neuron from layer ${layer + 1}`}, "−");
      more.disabled = size >= LIMITS.neurons;
      fewer.disabled = size <= 1;
      more.addEventListener("click", () => this.on.neuron(layer, +1));
      fewer.addEventListener("click", () => this.on.neuron(layer, -1));
      head.append(more, element("span", {class: "layer-size"}, `${size}`), fewer);
      this.root.append(head);
      const canvases = [];
      for (let row = 0; row < size; row++) {
        const [nx, ny] = this.position(layer + 1, row);
        const node = this.unit("node neuron", layer, row, nx, ny, `Layer ${layer + 1}, neuron ${row + 1}`);
        const canvas = element("canvas", {width: NODE, height: NODE, "aria-hidden": "true"});
        node.append(canvas);
        this.root.append(node);
        canvases.push(canvas);
      }
      this.thumbs.push(canvases);
    });
  }

  drawOutputs(outputs) {
    const column = this.columns.length - 1;
    const [x] = this.position(column, 0);
    this.root.append(element("div", {class: "layer-head", style: {left: `${x - 10}px`, top: `0px`, width: `${NODE + 20}px`}},
                             "Output"));
    for (let row = 0; row < outputs; row++) {
      const [nx, ny] = this.position(column, row);
      const colour = outputs === 1 ? `linear-gradient(135deg, ${COLOURS[0]}, ${COLOURS[1]})` : COLOURS[row];
      const node = this.unit("node output", column - 1, row, nx, ny,
                             outputs === 1 ? "The output (class 1 against class 0)" : `The output of class ${row}`);
      node.style.background = colour;
      this.root.append(node);
    }
  }

  drawLinks(state) {
    const active = FEATURES.map((f, i) => (state.inputs.includes(f) ? i : -1)).filter(i => i >= 0);
    for (let c = 1; c < this.columns.length; c++) {
      const sources = c === 1 ? active : [...Array(this.columns[c - 1]).keys()];
      const links = [];
      for (let to = 0; to < this.columns[c]; to++) {
        sources.forEach((from, k) => {
          const [x0, y0] = this.position(c - 1, from), [x1, y1] = this.position(c, to);
          const path = document.createElementNS(SVG, "path");
          const a = [x0 + NODE, y0 + NODE / 2], b = [x1, y1 + NODE / 2], mid = (a[0] + b[0]) / 2;
          path.setAttribute("d", `M${a} C${mid},${a[1]} ${mid},${b[1]} ${b}`);
          path.setAttribute("class", "link");
          path.dataset.layer = c - 1;
          path.dataset.to = to;
          path.dataset.from = k;
          path.dataset.name = `${c === 1 ? FEATURE_LABELS[FEATURES[from]] : `layer ${c - 1} neuron ${from + 1}`} → ` +
            `${c === this.columns.length - 1 ? "output" : `layer ${c} neuron ${to + 1}`}`;
          path.addEventListener("pointerenter", (event) => this.showWeight(path, event));
          path.addEventListener("click", () => this.on.edit(c - 1, to, k));
          path.addEventListener("pointerleave", () => { this.tooltip.hidden = true; });
          this.svg.append(path);
          links.push(path);
        });
      }
      this.links.push(links);
    }
  }

  /** A neuron (or an output) that a person can reach: focusable (one at a time in the Tab order), named, with its
   *  formula on hover and focus, its weights typed on a click or Enter. */
  unit(cls, layer, neuron, x, y, name) {
    const first = this.root.querySelector(".unit") === null;
    const node = element("div", {class: `${cls} unit`, style: {left: `${x}px`, top: `${y}px`}, role: "button",
                                 tabindex: first ? "0" : "-1", "aria-label": name, "data-layer": layer,
                                 "data-neuron": neuron, "aria-describedby": "link-tooltip"});
    node.addEventListener("pointerenter", () => this.explain(node));
    node.addEventListener("pointerleave", () => { if (document.activeElement !== node) this.tooltip.hidden = true; });
    return node;
  }

  key(event) {
    const node = event.target.closest?.(".unit");
    if (!node) return;
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.on.edit(Number(node.dataset.layer), Number(node.dataset.neuron));
      return;
    }
    const moves = {ArrowUp: [0, -1], ArrowDown: [0, 1], ArrowLeft: [-1, 0], ArrowRight: [1, 0]};
    if (!(event.key in moves)) return;
    event.preventDefault();
    const [dl, dn] = moves[event.key];
    const units = [...this.root.querySelectorAll(".unit")];
    const layer = Number(node.dataset.layer) + dl;
    const column = units.filter(u => Number(u.dataset.layer) === layer);
    if (!column.length) return;
    const next = column[Math.max(0, Math.min(column.length - 1, Number(node.dataset.neuron) + dn))];
    node.tabIndex = -1;
    next.tabIndex = 0;
    next.focus();
  }

  /** The neuron's formula with its numbers, and what its colours mean, beside it. */
  explain(node) {
    if (!node?.classList?.contains("unit")) return;
    const layer = Number(node.dataset.layer), neuron = Number(node.dataset.neuron);
    this.tooltip.textContent = this.formula(layer, neuron);
    const box = this.root.getBoundingClientRect(), at = node.getBoundingClientRect();
    this.tooltip.style.left = `${at.right - box.left + 6}px`;
    this.tooltip.style.top = `${at.top - box.top}px`;
    this.tooltip.hidden = false;
  }

  formula(layer, neuron) {
    const weights = this.weights?.[layer];
    if (!weights) return "";
    const output = layer === this.columns.length - 2;
    const names = layer === 0 ? this.state.inputs.map(f => FEATURE_LABELS[f]) :
      weights.w[neuron].map((_, s) => `a${["₁", "₂", "₃", "₄", "₅", "₆", "₇", "₈"][s]}`);
    const terms = weights.w[neuron].map((w, s) => `${w < 0 ? "−" : "+"} ${Math.abs(w).toFixed(2)}·${names[s]}`);
    const b = weights.b[neuron];
    const sum = `${terms.join(" ").replace(/^\+ /, "").replace(/^− /, "−")} ${b < 0 ? "−" : "+"} ${Math.abs(b).toFixed(2)}`;
    if (!output) {
      return `a = ${this.state.activation}(${sum}) — its picture: orange where a < 0, blue where a > 0`;
    }
    return this.columns[this.columns.length - 1] === 1 ? `Pr(class 1) = σ(${sum}) — blue: class 1, orange: class 0` :
      `z${neuron} = ${sum}; softmax over the classes gives Pr(class ${neuron})`;
  }

  /** The layer the backward pass view is at: its neurons and its links marked (null: none). */
  highlight(layer) {
    for (const node of this.root.querySelectorAll(".unit")) {
      node.classList.toggle("current", layer !== null && Number(node.dataset.layer) === layer);
    }
    this.links.forEach((links, l) => links.forEach(path => path.classList.toggle("current", l === layer)));
  }

  showWeight(path, event) {
    const w = this.weights?.[path.dataset.layer]?.w?.[path.dataset.to]?.[path.dataset.from];
    if (w === undefined || w === null) return;
    this.tooltip.textContent = `weight ${w.toFixed(4)} (${path.dataset.name})`;
    const box = this.root.getBoundingClientRect();
    this.tooltip.style.left = `${event.clientX - box.left + 12}px`;
    this.tooltip.style.top = `${event.clientY - box.top + 12}px`;
    this.tooltip.hidden = false;
  }

  /** Each frame: the links' width and colour from the weights, every neuron's picture. */
  update(network, thumbnails) {
    if (!network) return;
    this.weights = network.layers;
    network.layers.forEach((layer, l) => {
      const paths = this.links[l] || [], styles = (this.styles[l] ??= []);
      let i = 0;
      for (const row of layer.w) {
        for (const w of row) {
          const at = i++, path = paths[at];
          if (!path || w === null) continue;
          const width = Math.min(8, 0.4 + Math.abs(w) * 2).toFixed(1), stroke = w < 0 ? COLOURS[0] : COLOURS[1];
          const style = styles[at] ??= {};
          if (style.width !== width) path.style.strokeWidth = style.width = width;  // only what changed is restyled
          if (style.stroke !== stroke) path.style.stroke = style.stroke = stroke;  // (a repaint of the links costs)
        }
      }
    });
    thumbnails.forEach((bytes, l) => {
      const n = Math.round(Math.sqrt(bytes.length / (this.thumbs[l]?.length || 1)));
      (this.thumbs[l] || []).forEach((canvas, j) => {
        paint(canvas, signedImage(bytes.subarray(j * n * n, (j + 1) * n * n), n, imageFor(canvas, n)));
      });
    });
  }
}
