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

// Mean |z(p - u) - 2 z(p) + z(p + u)| over the interior: horizontal, vertical, both diagonals.
function secondDifferences(y, n) {
  const steps = [[0, 1], [1, 0], [1, 1], [1, -1]];
  const count = (n - 2) * (n - 2);
  return steps.map(([dr, dc]) => {
    let sum = 0;
    for (let r = 1; r < n - 1; r++) {
      for (let c = 1; c < n - 1; c++) {
        const i = r * n + c, u = dr * n + dc;
        sum += Math.abs(y[i - u] - 2 * y[i] + y[i + u]);
      }
    }
    return sum / count;
  });
}

// {noise, sharpness} of a tile's luma (side n); sharpness null when the tile has no structure to judge.
export function measureDetail(y, n) {
  const fine = halve(y, n), coarse = halve(fine, n >> 1);
  const dFine = secondDifferences(fine, n >> 1), dCoarse = secondDifferences(coarse, n >> 2);
  const meanCoarse = dCoarse.reduce((a, b) => a + b, 0) / 4;
  const sharpness = meanCoarse < MIN_STRUCTURE ? null
    : Math.min(...dFine.map((d, k) => d / Math.max(dCoarse[k], 1e-9)));
  return { noise: noiseSigma(y, n), sharpness };
}

// The manifest's rule.detail: "noise" first (noise also raises sharpness), then "blur", else null.
export function detailTrigger(rule, stats) {
  if (!rule || !stats) return null;
  if (rule.noise_max != null && stats.noise > rule.noise_max) return 'noise';
  if (rule.sharpness_min != null && stats.sharpness !== null && stats.sharpness < rule.sharpness_min) return 'blur';
  return null;
}
