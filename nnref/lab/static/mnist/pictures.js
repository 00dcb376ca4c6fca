// The /mnist page's pictures and tables: weights as 28 × 28 pictures (positive red, negative blue, as TensorBoard's
// templates), gray digits, the gallery of test digits, the confusion matrix and the layers' numbers.

// the playground's colours on every page of the lab (TensorFlow Playground's): blue positive, orange negative
const BLUE = [8, 119, 189], ORANGE = [245, 147, 34], WHITE = [247, 247, 247];

/** Bytes 128 ± 127 · v (a picture row by row from the top) as blue (+) · white · orange (−), the playground's colours; white past the bytes. */
export function signedImage(bytes, width = 28, height = width) {
  const image = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    const v = i < bytes.length ? (bytes[i] - 128) / 127 : 0, colour = v > 0 ? BLUE : ORANGE, s = Math.min(1, Math.abs(v));
    for (let j = 0; j < 3; j++) image.data[4 * i + j] = WHITE[j] + (colour[j] - WHITE[j]) * s;
    image.data[4 * i + 3] = 255;
  }
  return image;
}

/** Gray bytes (0 black … 255 white) of an n × m picture. */
export function grayImage(bytes, width, height = width) {
  const image = new ImageData(width, height);
  for (let i = 0; i < width * height; i++) {
    image.data.set([bytes[i], bytes[i], bytes[i], 255], 4 * i);
  }
  return image;
}

/** The ten templates: one canvas (28 × 28) per class, each named "Template of k". */
export function buildTemplates(root) {
  root.replaceChildren(...[...Array(10).keys()].map(k => {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    canvas.className = "template";
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", `Template of ${k}`);
    const caption = document.createElement("figcaption");
    caption.textContent = String(k);
    figure.append(canvas, caption);
    return figure;
  }));
  return [...root.querySelectorAll("canvas")];
}

/** ``count`` first-layer filters (28 × 28 each) in one canvas, ten to a row with a one-pixel gap. */
export function paintFilters(canvas, bytes, count) {
  const cols = 10, rows = Math.ceil(count / cols);
  const width = cols * 29 - 1, height = rows * 29 - 1;
  if (canvas.width !== width || canvas.height !== height) Object.assign(canvas, {width, height});
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  for (let k = 0; k < count; k++) {
    ctx.putImageData(signedImage(bytes.subarray(k * 784, (k + 1) * 784)), (k % cols) * 29, Math.floor(k / cols) * 29);
  }
}

/** The gallery: one button per test digit, its picture and (filled in by ``showGallery``) its top three. */
export function buildGallery(root, labels, images, onPick) {
  root.replaceChildren(...labels.map((label, i) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "digit";
    button.dataset.index = String(i);
    button.setAttribute("aria-label", `Test digit ${i + 1}, a ${label}: look inside`);
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = 28;
    canvas.setAttribute("aria-hidden", "true");
    canvas.getContext("2d").putImageData(grayImage(images.subarray(i * 784, (i + 1) * 784), 28), 0, 0);
    const top = document.createElement("span");
    top.className = "top";
    top.textContent = "…";
    button.append(canvas, top);
    button.addEventListener("click", () => onPick(i));
    item.append(button);
    return item;
  }));
}

/** Each digit's three likeliest classes; green when the first is right, red when it is wrong (and ✓ / ✗). */
export function showGallery(root, labels, gallery) {
  root.querySelectorAll("button.digit").forEach((button, i) => {
    const top = gallery?.[i];
    const right = top ? top[0][0] === labels[i] : null;
    button.classList.toggle("right", right === true);
    button.classList.toggle("wrong", right === false);
    button.querySelector(".top").textContent = top ?
      top.map(([c, p], k) => `${k ? "" : right ? "✓ " : "✗ "}${c} ${(100 * p).toFixed(0)}%`).join("\n") : "—";
  });
}

/** The confusion matrix's table (rows: the true digit; columns: the predicted one), built once. */
export function buildConfusion(table) {
  const head = document.createElement("tr");
  head.append(cell("th", "true \\ predicted", {scope: "col"}),
              ...[...Array(10).keys()].map(k => cell("th", String(k), {scope: "col"})));
  const body = document.createElement("tbody");
  for (let t = 0; t < 10; t++) {
    const row = document.createElement("tr");
    row.append(cell("th", String(t), {scope: "row"}), ...[...Array(10).keys()].map(() => cell("td", "0")));
    body.append(row);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  table.append(thead, body);
}

/** The counts, each cell shaded by its share of its row (light enough for the text on it to read). */
export function showConfusion(table, matrix) {
  table.querySelectorAll("tbody tr").forEach((row, t) => {
    const total = Math.max(1, matrix[t].reduce((a, b) => a + b, 0));
    row.querySelectorAll("td").forEach((td, p) => {
      const share = matrix[t][p] / total;
      td.textContent = String(matrix[t][p]);
      const tint = [255 - 148 * share, 255 - 81 * share, 255 - 41 * share].map(Math.round);
      td.style.backgroundColor = `rgb(${tint.join(",")})`;
      td.classList.toggle("diagonal", t === p);
    });
  });
}

/** One row per layer: its shape and activation, the mean ± spread of its activations and weight gradients, and its
 *  share of dead (ReLU) or saturated (sigmoid, tanh) units. */
export function showLayers(body, layers) {
  const fmt = (m, s) => (m === undefined || m === null ? "—" : `${m.toPrecision(2)} ± ${s.toPrecision(2)}`);
  const share = l => "dead" in l ? `${(100 * l.dead).toFixed(1)}% dead` :
    "saturated" in l ? `${(100 * l.saturated).toFixed(1)}% saturated` : "—";
  const rows = layers.map(l => {
    const row = document.createElement("tr");
    row.append(cell("th", `${l.name}: ${l.inputs} → ${l.units}, ${l.activation}`, {scope: "row"}),
               cell("td", fmt(l.act_mean, l.act_std)), cell("td", share(l)), cell("td", fmt(l.grad_mean, l.grad_std)));
    return row;
  });
  body.replaceChildren(...rows);
}

function cell(tag, text, attributes = {}) {
  const element = document.createElement(tag);
  element.textContent = text;
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}
