// The photo at the dermatologist's zoom: noise and sharpness of the native-resolution centre tile, as
// diqa_edge/sdk/detail.py measures them (docs/preprocessing.md, step 8). Float64 throughout, the same sums
// in the same order as far as they matter; the Python SDK and this page agree to about 1e-9.

const LUMA = [0.299, 0.587, 0.114];
const NOISE_KERNEL_SCALE = Math.sqrt(Math.PI / 2) / 6;
const MIN_STRUCTURE = 0.5;

// The side x side centre of an interleaved RGB uint8 image as luma (Float64Array), or null when smaller.
export function centreTileLuma(rgb, width, height, side) {
  if (side <= 0 || width < side || height < side) return null;
  const top = Math.floor((height - side) / 2), left = Math.floor((width - side) / 2);
  const y = new Float64Array(side * side);
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      const p = ((top + r) * width + left + c) * 3;
      y[r * side + c] = rgb[p] * LUMA[0] + rgb[p + 1] * LUMA[1] + rgb[p + 2] * LUMA[2];
    }
  }
  return y;
}

function noiseSigma(y, n) {
  let sum = 0;
  for (let r = 1; r < n - 1; r++) {
    for (let c = 1; c < n - 1; c++) {
      const i = r * n + c;
      const v = 4 * y[i] - 2 * (y[i - n] + y[i + n] + y[i - 1] + y[i + 1])
        + y[i - n - 1] + y[i - n + 1] + y[i + n - 1] + y[i + n + 1];
      sum += Math.abs(v);
    }
  }
  return NOISE_KERNEL_SCALE * sum / ((n - 2) * (n - 2));
}

function halve(y, n) {
  const m = n >> 1, out = new Float64Array(m * m);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < m; c++) {
      const i = 2 * r * n + 2 * c;
      out[r * m + c] = (y[i] + y[i + 1] + y[i + n] + y[i + n + 1]) / 4;
    }
  }
  return out;
}

// White noise of sigma s: averaged 2 x 2 its variance is s^2 / 4, averaged 4 x 4 s^2 / 16, and a second
// difference (1, -2, 1) of independent samples has 6 times the variance of one.
const FINE_NOISE_POWER = 6 / 4;
const COARSE_NOISE_POWER = 6 / 16;

// Mean of f(z(p - u) - 2 z(p) + z(p + u)) over the interior for u horizontal, vertical, both diagonals: f the
// square (the net-of-noise measure's power) or the absolute value (the "raw" measure of manifests written
// before the measure had a name).
function secondDifferenceMeans(y, n, f) {
  const steps = [[0, 1], [1, 0], [1, 1], [1, -1]];
  const count = (n - 2) * (n - 2);
  return steps.map(([dr, dc]) => {
    let sum = 0;
    for (let r = 1; r < n - 1; r++) {
      for (let c = 1; c < n - 1; c++) {
        const i = r * n + c, u = dr * n + dc;
        sum += f(y[i - u] - 2 * y[i] + y[i + u]);
      }
    }
    return sum / count;
  });
}
const square = (d) => d * d;

function netOfNoiseSharpness(fine, coarse, n, noise) {
  const pFine = secondDifferenceMeans(fine, n >> 1, square).map((p) => p - FINE_NOISE_POWER * noise * noise);
  const pCoarse = secondDifferenceMeans(coarse, n >> 2, square).map((p) => p - COARSE_NOISE_POWER * noise * noise);
  if (pCoarse.reduce((a, b) => a + b, 0) / 4 < MIN_STRUCTURE * MIN_STRUCTURE) return null;
  return Math.sqrt(Math.min(...pFine.map((p, k) => Math.max(p, 0) / Math.max(pCoarse[k], 1e-9))));
}

function rawSharpness(fine, coarse, n) {
  const dFine = secondDifferenceMeans(fine, n >> 1, Math.abs), dCoarse = secondDifferenceMeans(coarse, n >> 2, Math.abs);
  if (dCoarse.reduce((a, b) => a + b, 0) / 4 < MIN_STRUCTURE) return null;
  return Math.min(...dFine.map((d, k) => d / Math.max(dCoarse[k], 1e-9)));
}

// The measures a manifest's rule.detail.sharpness_measure may name (absent: "raw", the first shipped).
export const SHARPNESS_MEASURES = ['net-of-noise', 'raw'];

// {noise, sharpness} of a tile's luma (side n); sharpness by the measure the manifest's threshold was chosen
// on ("net-of-noise": less what white noise of the measured sigma puts at each scale), null when the tile
// has no structure to judge.
export function measureDetail(y, n, sharpnessMeasure = 'net-of-noise') {
  if (!SHARPNESS_MEASURES.includes(sharpnessMeasure)) throw new Error(`unknown sharpness measure ${sharpnessMeasure}`);
  const noise = noiseSigma(y, n);
  const fine = halve(y, n), coarse = halve(fine, n >> 1);
  const sharpness = sharpnessMeasure === 'raw' ? rawSharpness(fine, coarse, n) : netOfNoiseSharpness(fine, coarse, n, noise);
  return { noise, sharpness };
}

// The manifest's rule.detail: "noise" first (a very noisy tile's hint is the noise), then "blur", else null.
export function detailTrigger(rule, stats) {
  if (!rule || !stats) return null;
  if (rule.noise_max != null && stats.noise > rule.noise_max) return 'noise';
  if (rule.sharpness_min != null && stats.sharpness !== null && stats.sharpness < rule.sharpness_min) return 'blur';
  return null;
}
