// The training and test loss over the epochs, as TensorFlow Playground draws it under its output.

export class LossChart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];   // [epoch, train loss, test loss]
  }

  clear() {
    this.points = [];
    this.draw();
  }

  add(epoch, train, test) {
    const last = this.points[this.points.length - 1];
    if (last && epoch < last[0]) this.points = [];   // a new start: a new curve
    if (last && epoch === last[0]) this.points.pop();
    this.points.push([epoch, train, test]);
    if (this.points.length > 2000) this.points = this.points.filter((_, i) => i % 2 === 0);
    this.draw();
  }

  draw() {
    const {canvas, points} = this;
    const ctx = canvas.getContext("2d");
    const w = canvas.width, h = canvas.height, pad = 4;
    ctx.clearRect(0, 0, w, h);
    ctx.strokeStyle = "#d0d0d0";
    ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
    if (points.length < 2) return;
    const finite = points.flatMap(p => [p[1], p[2]]).filter(v => v !== null && Number.isFinite(v));
    const top = Math.max(1e-9, ...finite), first = points[0][0], last = points[points.length - 1][0];
    const x = e => pad + ((e - first) / Math.max(last - first, 1e-9)) * (w - 2 * pad);
    const y = v => h - pad - (v / top) * (h - 2 * pad);
    for (const [series, colour] of [[1, "#333333"], [2, "#aa5500"]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      let started = false;
      for (const p of points) {
        if (p[series] === null || !Number.isFinite(p[series])) continue;
        if (started) ctx.lineTo(x(p[0]), y(p[series]));
        else ctx.moveTo(x(p[0]), y(p[series]));
        started = true;
      }
      ctx.stroke();
    }
  }
}
