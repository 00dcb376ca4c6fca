// The training and test loss over the epochs, as TensorFlow Playground draws it under its output.
//
// Every point is kept (up to 2,000, then every other one), and each frame draws the whole curve anew (a new point
// rescales the x axis). A pixel column of the chart holds many points once the curve is long, so each series is
// drawn through four of each column's points — its first, its lowest, its highest and its last (M4, Jugel et al.,
// VLDB 2014) — which covers the same pixels as the line through all of them, for a few hundred segments a frame
// instead of up to 2,000.

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
    let top = 1e-9;
    for (const p of points) for (const v of [p[1], p[2]]) if (v !== null && v > top && Number.isFinite(v)) top = v;
    const first = points[0][0], last = points[points.length - 1][0];
    const x = e => pad + ((e - first) / Math.max(last - first, 1e-9)) * (w - 2 * pad);
    const y = v => h - pad - (v / top) * (h - 2 * pad);
    for (const [series, colour] of [[1, "#333333"], [2, "#aa5500"]]) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      trace(ctx, points, series, x, y);
      ctx.stroke();
    }
  }
}

/** The path of one series through its finite values, four points per pixel column at most: a column's first, its
 *  lowest and highest (in the order they come) and its last. */
function trace(ctx, points, series, x, y) {
  let column = null, kept = [];  // the column's points: [x, y] of its first, lowest, highest, last
  let previous = null;  // the last point drawn to
  const flush = () => {
    const [firstP, low, high, lastP] = kept;
    const middle = low[2] <= high[2] ? [low, high] : [high, low];  // (in the order they came)
    for (const q of [firstP, ...middle, lastP]) {
      if (q === previous) continue;  // (a column of one point: that point once)
      if (previous) ctx.lineTo(q[0], q[1]);
      else ctx.moveTo(q[0], q[1]);
      previous = q;
    }
  };
  points.forEach((p, i) => {
    const v = p[series];
    if (v === null || !Number.isFinite(v)) return;
    const q = [x(p[0]), y(v), i], at = Math.floor(q[0]);
    if (at !== column) {
      if (column !== null) flush();
      column = at;
      kept = [q, q, q, q];
      return;
    }
    if (q[1] > kept[1][1]) kept[1] = q;  // (canvas y grows downwards: the lowest value has the largest y)
    if (q[1] < kept[2][1]) kept[2] = q;
    kept[3] = q;
  });
  if (column !== null) flush();
}
