// The backward pass, live: the lecture's worked example on the network the page draws. For one instance, the
// forward values at every neuron, then from the loss back, one layer at a time, each neuron's dL/da, its local
// gradient da/dz and dL/dz; each weight's dL/dw = a_prev · dL/dz shown as the product of its factors; each bias's
// dL/db; and the update w ← w − α dL/dw. The numbers are the server's: nnref's hand-written backward, run on that
// one instance (nnref/backprop.py) — this page only lays them out, as two tables a screen reader reads.

import {FEATURE_LABELS} from "./state.js";
import {setText} from "./layout.js";

const SUB = ["₀", "₁", "₂", "₃", "₄", "₅", "₆", "₇", "₈", "₉"];
const sub = (n) => String(n).split("").map(d => SUB[Number(d)]).join("");

/** A number as the tables show it: three decimals, a true minus sign — and a number too small for three decimals
 *  (a trained net's gradients) in two significant digits, 2.1e−5, so that it does not read as zero. */
export function num(v) {
  if (v === null || v === undefined) return "—";
  if (v !== 0 && Math.abs(v) < 0.0005) return v.toExponential(1).replace("e-", "e−").replace("-", "−");
  return v.toFixed(3).replace("-", "−");
}

function cell(tag, text, attributes = {}) {
  const e = document.createElement(tag);
  e.textContent = text;
  for (const [k, v] of Object.entries(attributes)) e.setAttribute(k, v);
  return e;
}

export class BackpropView {
  /** ``root``: the panel; ``on``: {stage(layer or null)} — the layer the view is at, for the network to highlight. */
  constructor(root, on) {
    this.root = root;
    this.on = on;
    this.stage = 0;
    this.worked = null;
    this.neurons = root.querySelector("#backprop-neurons tbody");
    this.params = root.querySelector("#backprop-params tbody");
    root.querySelector("#stage-back").addEventListener("click", () => this.go(this.stage - 1));
    root.querySelector("#stage-next").addEventListener("click", () => this.go(this.stage + 1));
  }

  /** The stages: the forward pass, each layer backward from the output, the update. */
  stages() {
    const layers = this.worked ? this.worked.layers.length : 0;
    return ["forward", ...[...Array(layers).keys()].reverse().map(l => `layer ${l}`), "update"];
  }

  go(stage) {
    const stages = this.stages();
    this.stage = Math.max(0, Math.min(stages.length - 1, stage));
    this.render();
  }

  /** The worked pass of a frame (``header.backward``), or null when no instance is picked.  While training plays,
   *  the tables are rewritten twice a second (numbers that change 40 times a second cannot be read, and a
   *  table of hundreds of rows rewritten each frame would slow the frames down); paused, at once. */
  show(worked, playing = false) {
    const shape = worked ? worked.layers.map(l => l.w.length).join(",") : "";
    const fresh = shape !== this.shape;
    if (fresh) {  // another network: back to the forward stage
      this.shape = shape;
      this.stage = 0;
    }
    this.worked = worked;
    const now = performance.now();
    if (fresh || !playing || now - (this.shownAt ?? 0) >= 500) {
      this.shownAt = now;
      this.render();
    }
  }

  /** The layer a stage is at (null for the forward pass and the update: every layer). */
  currentLayer() {
    const name = this.stages()[this.stage];
    return name.startsWith("layer ") ? Number(name.slice(6)) : null;
  }

  layerName(l) {
    return l === this.worked.layers.length - 1 ? "output" : `hidden ${l + 1}`;
  }

  source(l, s) {
    return l === 0 ? FEATURE_LABELS[this.worked.inputs[s]] : `a${sub(s + 1)}`;
  }

  render() {
    const w = this.worked, current = this.currentLayer();
    const summary = this.root.querySelector("#backprop-summary");
    setText(this.root.querySelector("#stage-name"), this.describe(current));
    if (!w || w.error) {  // (while the view is closed, twice a second: what did not change is not rewritten)
      setText(summary, w?.error ?? "Click on the plane to pick an instance (or Next point).");
      this.neurons.replaceChildren();
      this.params.replaceChildren();
      this.rows = "";
      this.on.stage(null);
      return;
    }
    const x = w.x.map(num).join(", ");
    summary.textContent = `Instance x = (${x}), y = ${w.y}: the loss L = −log a_y = ${num(w.loss)}, with α = ${w.lr}.`;
    const neurons = w.layers.flatMap((layer, l) => layer.z.map((_, n) => this.neuronCells(layer, l, n)));
    const params = w.layers.flatMap((layer, l) => this.paramCells(layer, l));
    const rows = JSON.stringify([neurons.map(r => r.slice(0, 2)), params.map(r => r.slice(0, 2))]);
    if (rows !== this.rows) {  // another network or instance layout: new rows; otherwise their numbers change in place
      this.rows = rows;
      this.neurons.replaceChildren(...neurons.map(cells => this.row(cells)));
      this.params.replaceChildren(...params.map(cells => this.row(cells)));
    }
    this.fill(this.neurons, neurons, w.layers.flatMap((layer, l) => layer.z.map(() => l)), current);
    this.fill(this.params, params, w.layers.flatMap((layer, l) => layer.w.flatMap(r => [...r.map(() => l), l])), current);
    this.on.stage(current);
  }

  /** A table row: its first cell the row's header. */
  row(cells) {
    const row = document.createElement("tr");
    row.append(cell("th", cells[0], {scope: "row"}), ...cells.slice(1).map(text => cell("td", text)));
    return row;
  }

  /** The numbers of each row, written into its cells in place; at a layer's stage only that layer's rows (the
   *  forward pass and the update show every layer's). */
  fill(body, cells, layers, current) {
    [...body.children].forEach((row, i) => {
      row.classList.toggle("current", layers[i] === current);
      row.classList.toggle("other", current !== null && layers[i] !== current);
      cells[i].forEach((text, j) => { if (row.children[j].textContent !== text) row.children[j].textContent = text; });
    });
  }

  describe(current) {
    const name = this.stages()[this.stage];
    if (!this.worked || this.worked.error) return "";
    if (name === "forward") return "Forward: z and a of every neuron, then the loss";
    if (name === "update") return `Update: w ← w − α dL/dw, α = ${this.worked.lr}`;
    return `Backward through the ${this.layerName(current)} layer`;
  }

  neuronCells(layer, l, n) {
    const localGradient = layer.da_dz ? num(layer.da_dz[n]) : "softmax: dL/dz = a − y";
    return [this.layerName(l), `${n + 1}`, num(layer.z[n]), num(layer.a[n]), num(layer.dL_da[n]), localGradient,
            num(layer.dL_dz[n])];
  }

  /** The rows of a layer's parameters: every weight of a neuron, then its bias. */
  paramCells(layer, l) {
    const rows = [];
    const single = this.worked.layers.length === 1 && layer.w.length === 1;  // the line: w₁, w₂, b
    const lr = this.worked.lr;
    layer.w.forEach((weights, n) => {
      const factors = layer.da_dz ? `${num(layer.da_dz[n])} × ${num(layer.dL_da[n])}` : num(layer.dL_dz[n]);
      weights.forEach((value, s) => {
        const name = single ? `w${sub(s + 1)} (${this.source(l, s)})` : `${this.source(l, s)} → ${n + 1}`;
        rows.push([this.layerName(l), name, num(value), `${num(layer.a_prev[s])} × ${factors} =`,
                   num(layer.dL_dw[n][s]), num(-lr * layer.dL_dw[n][s]), num(layer.w_new[n][s])]);
      });
      rows.push([this.layerName(l), single ? "b" : `b of ${n + 1}`, num(layer.b[n]), `1 × ${factors} =`,
                 num(layer.dL_db[n]), num(-lr * layer.dL_db[n]), num(layer.b_new[n])]);
    });
    return rows;
  }
}
