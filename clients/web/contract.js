// The preprocessing contract of docs/preprocessing.md, in the browser. Every number comes from the
// model's manifest (field "contract"); nothing here is a constant of a particular model.
// Reference code: diqa_edge/sdk/decode.py and diqa_edge/sdk/preprocess.py. The resize is Pillow's
// BILINEAR resampling (libImaging/Resample.c) step for step, fixed-point coefficients included, so
// the crop equals the SDK's byte for byte instead of "within a level".

const PRECISION_BITS = 22;            // Pillow: 32 - 8 bits of a sample - 2 bits of headroom
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

export class InputError extends Error {
  constructor(reason, message) { super(message); this.reason = reason; }
}

// Step 0: the pixel budget, checked on the size before a pixel is read.
export function checkBudget(width, height, contract) {
  if (width === 0 || height === 0) throw new InputError('empty', `the image is ${width} x ${height} pixels`);
  if (width * height > contract.max_pixels) {
    throw new InputError('too_large', `${width} x ${height} pixels is over the model's budget of ` +
      `${(contract.max_pixels / 1e6).toFixed(0)} megapixels`);
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (aspect > contract.max_aspect) {
    throw new InputError('aspect', `a ${width} x ${height} image is longer than 1:${contract.max_aspect} ` +
      'on one side; a photo of skin is not a strip');
  }
}

// Step 2's size rule: the shorter side becomes S, aspect kept, floor rounding.
export function resizedSize(width, height, size) {
  if (height <= width) return [Math.max(size, Math.floor(width * size / height)), size];
  return [size, Math.max(size, Math.floor(height * size / width))];
}

function bilinear(x) {
  if (x < 0) x = -x;
  return x < 1 ? 1 - x : 0;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1).
function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = bilinear((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

function clip8(ss) {
  if (ss >= ONE * 256) return 255;
  if (ss <= 0) return 0;
  return Math.floor(ss / ONE);
}

// One pass along x (rows kept) of an interleaved RGB uint8 image.
function resampleHorizontal(src, width, height, outWidth) {
  const { bounds, kk, ksize } = coefficients(width, outWidth);
  const out = new Uint8Array(outWidth * height * 3);
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let xx = 0; xx < outWidth; xx++) {
      const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], k0 = xx * ksize;
      let r = HALF, g = HALF, b = HALF;
      for (let x = 0; x < xmax; x++) {
        const w = kk[k0 + x], p = row + (x + xmin) * 3;
        r += src[p] * w; g += src[p + 1] * w; b += src[p + 2] * w;
      }
      const o = (y * outWidth + xx) * 3;
      out[o] = clip8(r); out[o + 1] = clip8(g); out[o + 2] = clip8(b);
    }
  }
  return out;
}

// One pass along y (columns kept).
function resampleVertical(src, width, height, outHeight) {
  const { bounds, kk, ksize } = coefficients(height, outHeight);
  const out = new Uint8Array(width * outHeight * 3);
  const stride = width * 3;
  for (let yy = 0; yy < outHeight; yy++) {
    const ymin = bounds[yy * 2], ymax = bounds[yy * 2 + 1], k0 = yy * ksize;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0; y < ymax; y++) s += src[(y + ymin) * stride + i] * kk[k0 + y];
      out[yy * stride + i] = clip8(s);
    }
  }
  return out;
}

// Step 2: Pillow's Image.resize(..., BILINEAR): horizontal pass first, each pass rounded to uint8,
// an axis whose size does not change is not filtered.
export function resizeShorterSide(rgb, width, height, size) {
  const [w, h] = resizedSize(width, height, size);
  let out = rgb;
  if (w !== width) out = resampleHorizontal(out, width, height, w);
  if (h !== height) out = resampleVertical(out, w, height, h);
  return { rgb: out, width: w, height: h };
}

// Step 3: the S x S crop, floor offsets.
export function centerCrop(rgb, width, height, size) {
  if (width < size || height < size) throw new InputError('small', `cannot crop ${size} x ${size} from ${width} x ${height}`);
  const top = Math.floor((height - size) / 2), left = Math.floor((width - size) / 2);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * width + left) * 3;
    out.set(rgb.subarray(from, from + size * 3), y * size * 3);
  }
  return out;
}

export function resizeAndCrop(rgb, width, height, contract) {
  const r = resizeShorterSide(rgb, width, height, contract.input_size);
  return centerCrop(r.rgb, r.width, r.height, contract.input_size);
}

// Steps 4-5: float32 (p / 255 - mean) / std, every operation rounded to float32 as numpy does,
// in the layout the model file wants ("NCHW" for ONNX, "NHWC" for TFLite).
export function normalise(crop, contract, layout = contract.layout) {
  const n = contract.input_size * contract.input_size;
  const f = Math.fround;
  const mean = contract.mean.map(f), std = contract.std.map(f);
  const x = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = f(f(f(crop[i * 3 + c] / 255) - mean[c]) / std[c]);
      if (layout === 'NCHW') x[c * n + i] = v;
      else if (layout === 'NHWC') x[i * 3 + c] = v;
      else throw new Error(`unknown layout ${layout}`);
    }
  }
  return x;
}

// RGBA pixels (canvas ImageData) -> packed RGB.
export function rgbaToRgb(rgba) {
  const n = rgba.length / 4;
  const rgb = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    rgb[i * 3] = rgba[i * 4]; rgb[i * 3 + 1] = rgba[i * 4 + 1]; rgb[i * 3 + 2] = rgba[i * 4 + 2];
  }
  return rgb;
}

// Pixels of a drawable (an ImageBitmap, a video frame) at its own size, composited over the
// contract's background (step 1.3: transparency over alpha_background).
export function pixelsOf(source, width, height, contract) {
  const canvas = new OffscreenCanvas(width, height);
  const g = canvas.getContext('2d', { willReadFrequently: true });
  const [r, gr, b] = contract.alpha_background;
  g.fillStyle = `rgb(${r}, ${gr}, ${b})`;
  g.fillRect(0, 0, width, height);
  g.drawImage(source, 0, 0);
  return rgbaToRgb(g.getImageData(0, 0, width, height).data);
}

// Step 1 for a file: decode every pixel (the browser cannot decode in the DCT domain), apply the
// EXIF orientation (step 1.2) and no colour management (the SDK applies none: ICC profiles ignored).
export async function decodeBlob(blob, contract) {
  if (contract.decode !== 'full') {
    throw new Error(`this page decodes every pixel; the model's contract asks for "${contract.decode}"`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      imageOrientation: contract.exif_orientation ? 'from-image' : 'none',
      colorSpaceConversion: 'none', premultiplyAlpha: 'none',
    });
  } catch (err) {
    throw new InputError('decode', `not an image the browser can decode (${err.message})`);
  }
  try {
    checkBudget(bitmap.width, bitmap.height, contract);
    return { rgb: pixelsOf(bitmap, bitmap.width, bitmap.height, contract), width: bitmap.width, height: bitmap.height };
  } finally {
    bitmap.close();
  }
}
