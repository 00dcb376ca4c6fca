// Look inside one digit: a test digit picked in the gallery, or one drawn on the pad, through the model being
// trained now — the input, every hidden layer's activations, the ten probabilities, and −dL/dx by nnref's
// hand-written backward.  The server re-computes it with every frame, so it changes as the model learns.

import {grayImage, signedImage} from "./pictures.js";

const $ = (id) => document.getElementById(id);

/** The drawing pad: strokes in white on black; ``send(header, gray bytes)`` when a stroke ends. */
export function bindPad(pad, clearButton, send) {
  const ctx = pad.getContext("2d");
  let drawing = false, last = null;
  const clear = () => {
    ctx.fillStyle = "#000000";
    ctx.fillRect(0, 0, pad.width, pad.height);
  };
  const point = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
  };
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    last = point(event);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    const p = point(event);
    Object.assign(ctx, {strokeStyle: "#ffffff", lineWidth: 10, lineCap: "round", lineJoin: "round"});
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
      const rgba = ctx.getImageData(0, 0, pad.width, pad.height).data;
      const gray = new Uint8Array(pad.width * pad.height);
      for (let i = 0; i < gray.length; i++) gray[i] = rgba[4 * i];
      send({type: "draw", width: pad.width, height: pad.height}, gray);
    });
  }
  clearButton.addEventListener("click", clear);
  clear();
}

/** The digit's header and pictures (input 784 bytes, −dL/dx 784, then each hidden layer's activations). */
export function showDigit(digit, bytes) {
  const label = digit.label === null ? "" : `, a ${digit.label}`;
  $("digit-source").textContent = `${digit.source}${label}: the model says ${digit.best} ` +
    `(${(100 * digit.probabilities[digit.best]).toFixed(1)}%); loss of class ${digit.target} ${digit.loss.toFixed(3)}`;
  $("digit-input").getContext("2d").putImageData(grayImage(bytes.subarray(0, 784), 28), 0, 0);
  $("digit-gradient").getContext("2d").putImageData(signedImage(bytes.subarray(784, 1568)), 0, 0);
  $("digit-gradient-text").textContent = `−dL/dx of class ${digit.target}'s loss: blue pixels, made brighter, ` +
    `would make the digit more a ${digit.target}; orange ones, less.`;
  showHidden(digit.hidden, bytes.subarray(1568));
  showProbabilities(digit);
}

function showProbabilities(digit) {
  const list = $("digit-probabilities");
  if (list.children.length !== digit.probabilities.length) {
    list.replaceChildren(...digit.probabilities.map(() => {
      const li = document.createElement("li");
      const name = document.createElement("span"), bar = document.createElement("span");
      const value = document.createElement("span");
      bar.className = "bar";
      li.append(name, bar, value);
      return li;
    }));
  }
  [...list.children].forEach((li, k) => {
    const p = digit.probabilities[k], text = `${(100 * p).toFixed(1)}%`;
    const [name, bar, value] = li.children;
    name.textContent = String(k);
    bar.style.width = text;
    value.textContent = text;
    li.className = k === digit.best ? "best" : "";
    li.setAttribute("aria-label", `class ${k}: ${text}`);
  });
}

function showHidden(sizes, bytes) {
  const root = $("digit-hidden");
  if (root.dataset.sizes !== sizes.join(",")) {
    root.dataset.sizes = sizes.join(",");
    root.replaceChildren(...sizes.map((size, l) => {
      const cols = Math.min(size, 32), rows = Math.ceil(size / cols);
      const canvas = document.createElement("canvas");
      Object.assign(canvas, {width: cols, height: rows});
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `Hidden layer ${l + 1}: the activations of its ${size} units`);
      return canvas;
    }));
    if (!sizes.length) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = "Softmax regression has no hidden layer: the 784 pixels go straight to the ten scores.";
      root.append(p);
    }
  }
  let offset = 0;
  root.querySelectorAll("canvas").forEach((canvas, l) => {
    const size = sizes[l];
    canvas.getContext("2d").putImageData(signedImage(bytes.subarray(offset, offset + size), canvas.width,
                                                     canvas.height), 0, 0);
    offset += size;
  });
}
