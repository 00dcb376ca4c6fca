// The page on one screen: at a projector's 1280 × 720 (and larger) nothing scrolls. The plots take the room the
// other columns leave (never more than their own resolution), the network is scaled down to its column when it is
// larger, and the backward pass view fills its column's height, its tables scrolling inside when a stage has more
// rows than room. Called after every change of what is shown (a frame, a notice, a resize).

const GAP = 16, MIN_NETWORK = 300, SIDE = 240, MARGIN = 4;

/** A text shown, rewritten only when it changed: a text node replaced is a layout of the page (and a hit test of
 *  what is under the pointer) even with the same words — and a frame rewrites the scores and the captions. */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** Lay the page out for the window as it is now. */
export function fitScreen() {
  sizePlots();
  scaleNetwork();
  fitBackprop();
}

function sizePlots() {
  const root = document.getElementById("plots"), canvases = [...root.querySelectorAll("canvas.plane")];
  if (!canvases.length) return;
  const output = root.closest(".output-column");
  const beside = getComputedStyle(output).gridTemplateColumns.trim().split(/\s+/).length > 1;
  const columns = document.querySelector(".columns");
  const first = [...columns.children].find(c => c.offsetParent !== null && c !== output && !c.matches(".network-column"));
  const network = document.getElementById("network");
  const networkWidth = Math.min(MIN_NETWORK, parseFloat(network.style.width) || MIN_NETWORK);
  const room = columns.clientWidth - (first?.offsetWidth ?? 0) - 2 * GAP - (beside ? SIDE : 0) - networkWidth;
  const n = canvases.length;
  let side = Math.max(160, Math.min(Number(canvases[0].dataset.side), Math.floor((room - 8 * (n - 1)) / n)));
  for (let i = 0; i < 3; i++) {  // as tall as the window allows (the captions and, below, the scores too)
    setSide(canvases, side);
    const over = output.getBoundingClientRect().bottom + window.scrollY + MARGIN - window.innerHeight;
    const plotsBottom = root.getBoundingClientRect().bottom + window.scrollY + MARGIN - window.innerHeight;
    if (over <= 0 || (beside && plotsBottom <= 0)) break;  // (beside: the plot is not what is too tall)
    side = Math.max(160, side - Math.ceil(beside ? plotsBottom : over));
  }
}

function setSide(canvases, side) {
  for (const canvas of canvases) {
    canvas.style.width = canvas.style.height = `${side}px`;
    const marks = canvas.parentElement.querySelector("canvas.marks");  // (over the heat map, inside its border)
    marks.style.width = marks.style.height = `${side - 2}px`;
    canvas.nextElementSibling.style.maxWidth = `${Math.max(side, 160)}px`;
  }
}

/** The network drawn at its size, or scaled down to fit its column's width and the window's height. */
function scaleNetwork() {
  const network = document.getElementById("network"), column = network.closest(".network-column");
  const width = parseFloat(network.style.width), height = parseFloat(network.style.height);
  if (!width || !height || !column.offsetParent) return;
  const hint = column.querySelector(".network-hint");
  const top = network.getBoundingClientRect().top + window.scrollY;
  const tall = window.innerHeight - top - (hint?.offsetHeight ?? 0) - MARGIN - 6;
  const scale = Math.min(1, column.clientWidth / width, tall / height);
  network.style.transform = scale < 1 ? `scale(${scale.toFixed(3)})` : "";
  network.style.marginRight = `${width * (scale - 1)}px`;
  network.style.marginBottom = `${height * (scale - 1)}px`;
  network.dataset.scale = scale.toFixed(3);
}

/** The backward pass view as tall as the window leaves it. */
function fitBackprop() {
  const view = document.getElementById("backprop");
  if (view.hidden) return;
  const top = view.getBoundingClientRect().top + window.scrollY;
  view.style.height = `${Math.max(200, window.innerHeight - top - MARGIN)}px`;
}
