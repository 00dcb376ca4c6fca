// The one socket module of the lab's live pages — the playground, /mnist and /digits — and their one frame format:
// a message is JSON text, or binary: the header's length (4 bytes, little-endian), the header as JSON, the payload's
// bytes (nnref/lab/session.py's encode and decode, both ways).  The address carries the page's token.

const token = new URLSearchParams(location.search).get("token");

/** A binary message's {header, payload (Uint8Array)}: the networks' weights sent as float32 (`floats`, right after
 *  the header) are put back into their layers first (expandLayers), so the page reads lists either way. */
export function decode(buffer) {
  const n = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, n)));
  let at = 4 + n;
  if (header.floats) {
    expandLayers(header, new Float32Array(buffer.slice(at, at + 4 * header.floats)));  // (little-endian, as sent)
    at += 4 * header.floats;
  }
  return {header, payload: new Uint8Array(buffer, at)};
}

/** Every network of a header whose `layers` came as {at, shapes: [[c, p], …]} — from float `at` on, each layer's
 *  weights (c × p, row by row), then its biases (c) — with its layers as [{w: [[…] × c], b: […]}, …] again. */
export function expandLayers(header, floats) {
  for (const holder of [header.network, ...(header.models ?? [])]) {
    const packed = holder?.layers;
    if (!packed || Array.isArray(packed)) continue;
    let at = packed.at;
    holder.layers = packed.shapes.map(([c, p]) => {
      const w = Array.from({length: c}, (_, r) => Array.from(floats.subarray(at + r * p, at + (r + 1) * p)));
      const b = Array.from(floats.subarray(at + c * p, at + c * p + c));
      at += c * p + c;
      return {w, b};
    });
  }
  return header;
}

/** A binary message of a header and bytes. */
export function encode(header, bytes = new Uint8Array(0)) {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const message = new Uint8Array(4 + head.length + bytes.length);
  new DataView(message.buffer).setUint32(0, head.length, true);
  message.set(head, 4);
  message.set(bytes, 4 + head.length);
  return message;
}

/** The page's socket to `path` (e.g. "/ws/playground"): `on.open()`, `on.json(message)`, `on.frame(header,
 *  payload)` for each binary message, `on.close()`.  Sending while it is not open does nothing. */
export class PageSocket {
  constructor(path, on) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.ws = new WebSocket(`${scheme}://${location.host}${path}${token ? `?token=${encodeURIComponent(token)}` : ""}`);
    this.ws.binaryType = "arraybuffer";
    if (on.open) this.ws.addEventListener("open", () => on.open());
    if (on.close) this.ws.addEventListener("close", () => on.close());
    this.ws.addEventListener("message", (event) => {
      if (typeof event.data === "string") on.json?.(JSON.parse(event.data));
      else {
        const {header, payload} = decode(event.data);
        on.frame?.(header, payload);
      }
    });
  }

  get open() { return this.ws.readyState === WebSocket.OPEN; }

  /** A message as JSON text. */
  send(message) {
    if (this.open) this.ws.send(JSON.stringify(message));
    return this.open;
  }

  /** A header and bytes as one binary message. */
  sendBinary(header, bytes) {
    if (this.open) this.ws.send(encode(header, bytes));
    return this.open;
  }
}
