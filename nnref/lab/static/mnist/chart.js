// One chart of a run on MNIST: the training loss of every step (grey), the validation loss (orange) and the
// validation accuracy (blue, its scale 0–100% on the right), over the steps.

const MAX_POINTS = 3000;

export class RunChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.clear();
  }

  clear() {
    this.train = [];  // [step, loss]
    this.val = [];    // [step, loss, accuracy]
    this.draw();
  }

  addLosses(losses) {
    for (const point of losses) this.train.push(point);
    if (this.train.length > MAX_POINTS) this.train = this.train.filter((_, i) => i % 2 === 0);
  }

  addValidation(step, loss, accuracy) {
    const last = this.val[this.val.length - 1];
    if (last && last[0] === step) return;
    this.val.push([step, loss, accuracy]);
    if (this.val.length > MAX_POINTS) this.val = this.val.filter((_, i) => i % 2 === 0);
  }

  draw() {
    const {canvas} = this;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 6, right = 34;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#d0d0d0";
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    const last = Math.max(this.train.at(-1)?.[0] ?? 0, this.val.at(-1)?.[0] ?? 0);
    if (last === 0) return;
    const losses = [...this.train.map(p => p[1]), ...this.val.map(p => p[1])].filter(Number.isFinite);
    const top = Math.min(Math.max(1e-6, ...losses), 5);
    const x = s => pad + (s / last) * (w - pad - right);
    const yLoss = v => h - pad - (Math.min(v, top) / top) * (h - 2 * pad);
    const yAcc = a => h - pad - a * (h - 2 * pad);
    this.line(ctx, this.train, p => x(p[0]), p => yLoss(p[1]), "#9a9a9a", 1);
    this.line(ctx, this.val, p => x(p[0]), p => yLoss(p[1]), "#b35806", 2);
    this.line(ctx, this.val, p => x(p[0]), p => yAcc(p[2]), "#0b5394", 2);
    ctx.fillStyle = "#1d1d1d";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillText("100%", w - right + 3, yAcc(1) + 9);
    ctx.fillText("0%", w - right + 3, yAcc(0));
    ctx.fillText(`loss ${top.toFixed(2)}`, pad + 2, pad + 9);
  }

  line(ctx, points, px, py, colour, width) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.beginPath();
    let started = false;
    for (const p of points) {
      if (!p.every(v => v !== null && Number.isFinite(v))) continue;
      if (started) ctx.lineTo(px(p), py(p));
      else ctx.moveTo(px(p), py(p));
      started = true;
    }
    ctx.stroke();
  }
}
