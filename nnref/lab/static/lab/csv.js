// Your own points as CSV: what export writes (x1,x2,class,split), import reads back exactly — and the files people
// bring: a header or none, quoted fields, commas, semicolons or tabs between fields, the lecture's labels −1/1,
// no split column (every point trains). Rows that cannot be points are counted by reason, never dropped silently.

/** The CSV text of training and test points [x1, x2, class]: one row each, with its split. */
export function toCsv(train, test) {
  const rows = [...train.map(p => [...p.slice(0, 3), "train"]), ...test.map(p => [...p.slice(0, 3), "test"])];
  return ["x1,x2,class,split", ...rows.map(r => r.join(","))].join("\n") + "\n";
}

/** The fields of one line, split at ``separator`` outside double quotes ("" inside quotes is one quote). */
function fields(line, separator) {
  const out = [];
  let field = "", quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') { field += '"'; i++; }
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === separator) { out.push(field.trim()); field = ""; }
    else field += ch;
  }
  out.push(field.trim());
  return out;
}

/** The separator of a file: the one of comma, semicolon and tab that its first line holds most of. */
function separatorOf(line) {
  const counts = [",", ";", "\t"].map(s => [s, fields(line, s).length]);
  return counts.sort((a, b) => b[1] - a[1])[0][0];
}

const SPLITS = {train: 0, training: 0, test: 1, testing: 1};

/** Points [x1, x2, class] (training) or [x1, x2, class, 1] (test) from a CSV text, and what was dropped and why:
 *  ``{points, dropped: {reason: count}, rows}``. ``domain`` bounds the coordinates; at most ``limit`` points. */
export function parseCsv(text, {domain = [-6, 6], limit = 1000, classes = 4} = {}) {
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/).filter(l => l.trim() !== "");
  const dropped = {};
  const drop = reason => { dropped[reason] = (dropped[reason] ?? 0) + 1; };
  if (!lines.length) return {points: [], dropped, rows: 0};
  const separator = separatorOf(lines[0]);
  let rows = lines.map(l => fields(l, separator));
  const header = rows[0].map(c => c.toLowerCase());
  const named = header.some(c => ["x1", "x2", "class", "label", "y", "split"].includes(c));
  if (named || !Number.isFinite(Number(rows[0][0]))) rows = rows.slice(1);
  const at = name => header.indexOf(name);
  const col = named ? {x1: at("x1"), x2: at("x2"), cls: [at("class"), at("label"), at("y")].find(i => i >= 0),
                       split: at("split")} : {x1: 0, x2: 1, cls: 2, split: 3};
  if (col.x1 < 0 || col.x2 < 0 || col.cls === undefined) {
    return {points: [], dropped: {"without columns x1, x2 and class": rows.length}, rows: rows.length};
  }
  const numbers = rows.map(r => [col.x1, col.x2, col.cls].map(i => Number(r[i]?.replace(",", ".") ?? NaN)));
  const lectureLabels = numbers.some(n => n[2] === -1) && numbers.every(n => !Number.isFinite(n[2]) ||
                                                                         n[2] === -1 || n[2] === 1);
  const points = [];
  rows.forEach((r, i) => {
    let [x1, x2, c] = numbers[i];
    if (![x1, x2, c].every(Number.isFinite)) return drop("not numbers");
    if (lectureLabels) c = c === 1 ? 1 : 0;  // the lecture's −1/+1 labels: classes 0 and 1
    if (!Number.isInteger(c) || c < 0 || c >= classes) return drop(`with a class outside 0–${classes - 1}`);
    if (Math.abs(x1) > domain[1] || Math.abs(x2) > domain[1]) return drop(`off the plane (x₁, x₂ in [${domain}])`);
    const split = col.split >= 0 && r[col.split] !== undefined ? SPLITS[r[col.split].toLowerCase()] : 0;
    if (split === undefined) return drop("with a split other than train or test");
    if (points.length >= limit) return drop(`beyond ${limit} points`);
    points.push(split ? [x1, x2, c, 1] : [x1, x2, c]);
  });
  return {points, dropped, rows: rows.length, lectureLabels};
}

/** What an import did, in a sentence. */
export function importReport({points, dropped, lectureLabels}) {
  const tests = points.filter(p => p.length > 3).length;
  const parts = Object.entries(dropped).map(([reason, n]) => `${n} ${n === 1 ? "row" : "rows"} ${reason}`);
  const read = points.length ? `Imported ${points.length} point${points.length === 1 ? "" : "s"}` +
    (tests ? ` (${points.length - tests} training, ${tests} test)` : "") +
    (lectureLabels ? "; labels −1 and 1 read as classes 0 and 1" : "") : "No points imported";
  return read + (parts.length ? `; dropped ${parts.join(", ")}.` : ".");
}
