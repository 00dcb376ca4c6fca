// A frame's pictures, from what it carries: each network's heat map and every hidden neuron's picture computed
// from its weights (model.js), KNN's map as the server last sent it (it changes only when KNN does).  A network
// whose weights did not change since the last frame (a paused page, a frame that changed only KNN or what is
// shown) keeps its pictures: nothing is computed again.

import {neuronBytes, probabilityBytes, trace} from "./model.js";

let last = [];  // each model of the last frame: {key (its weights and grid), values (trace's), map, neurons}

/** {maps: one Uint8Array (n² × classes) per model of the frame, neurons: one Uint8Array per hidden layer of the
 *  drawn network (neuron by neuron, t² each), traced: how many networks were computed anew}: the bytes heatmap.js
 *  draws. */
export function pictures(header, knnMap) {
  const n = header.resolution, c = header.classes, every = Math.round(n / header.thumbnail);
  let neurons = [], traced = 0;
  const maps = header.models.map((m, i) => {
    if (m.kind === "knn") return knnMap && knnMap.length === n * n * c ? knnMap : new Uint8Array(n * n * c);
    const own = !m.layers, network = own ? header.network : {...header.network, layers: m.layers};
    const key = JSON.stringify([network, c, n, every]);
    if (last[i]?.key !== key) {
      const values = trace(network, c, n, every, last[i]?.values), widths = network.layers.map(layer => layer.w.length);
      last[i] = {key, values, map: probabilityBytes(values.probs),
                 neurons: neuronBytes(values.hidden, widths, Math.ceil(n / every))};
      traced += 1;
    }
    if (own) neurons = last[i].neurons;
    return last[i].map;
  });
  last.length = header.models.length;
  return {maps, neurons, traced};
}
