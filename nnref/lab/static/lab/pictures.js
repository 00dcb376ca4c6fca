// A frame's pictures, from what it carries: each network's heat map and every hidden neuron's picture computed
// from its weights (model.js), KNN's map as the server last sent it (it changes only when KNN does).

import {neuronBytes, probabilityBytes, trace} from "./model.js";

/** {maps: one Uint8Array (n² × classes) per model of the frame, neurons: one Uint8Array per hidden layer of the
 *  drawn network (neuron by neuron, t² each)}: the bytes heatmap.js draws. */
export function pictures(header, knnMap) {
  const n = header.resolution, c = header.classes, every = Math.round(n / header.thumbnail);
  let neurons = [];
  const maps = header.models.map(m => {
    if (m.kind === "knn") return knnMap && knnMap.length === n * n * c ? knnMap : new Uint8Array(n * n * c);
    const own = !m.layers, network = own ? header.network : {...header.network, layers: m.layers};
    const {probs, hidden} = trace(network, c, n, every);
    if (own) neurons = neuronBytes(hidden, network.layers.map(layer => layer.w.length), Math.ceil(n / every));
    return probabilityBytes(probs);
  });
  return {maps, neurons};
}
