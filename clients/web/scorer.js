// Photo or frame -> contract preprocessing -> the phone's .tflite file in LiteRT.js -> score, reasons,
// accept / retake, hint. The page's counterpart of diqa_edge.sdk.scorer.QualityScorer.

import { loadLiteRt, loadAndCompile, supportsFeature, Tensor } from './litert/core.js';
import { decodeBlob, pixelsOf, resizeAndCrop, normalise, checkBudget } from './contract.js';
import { RetakeRule, hintFor, topReason } from './rule.js';
import { centreTileLuma, measureDetail } from './detail.js';

export async function loadScorer(base = new URL('.', import.meta.url)) {
  const get = async (name) => {
    const r = await fetch(new URL(name, base));
    if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
    return r;
  };
  const manifest = await (await get('model.manifest.json')).json();
  const hints = await (await get('hints.json')).json();
  // two threads where the page is cross-origin isolated (the server sends COOP / COEP: the threaded
  // WebAssembly build needs SharedArrayBuffer), else one; ?threads=N in the address asks for another count
  const asked = Number(new URLSearchParams(globalThis.location?.search || '').get('threads')) || 2;
  let threads = globalThis.crossOriginIsolated ? Math.min(asked, navigator.hardwareConcurrency || 1) : 1;
  // the threaded build needs relaxed SIMD and WebAssembly threads: without them, one thread (not a failure)
  if (threads > 1 && !((await supportsFeature('threads')) && (await supportsFeature('relaxedSimd')))) threads = 1;
  await loadLiteRt(new URL('litert/wasm/', base).href, { threads: threads > 1 });
  const model = new Uint8Array(await (await get('model.tflite')).arrayBuffer());
  const compiled = await loadAndCompile(model, { accelerator: 'wasm', cpuOptions: { numThreads: threads } });
  return new Scorer(manifest, hints, compiled, threads);
}

const now = () => performance.now();

export class Scorer {
  constructor(manifest, hints, model, threads) {
    this.manifest = manifest;
    this.contract = manifest.contract;
    this.hints = hints;
    this.model = model;
    this.rule = new RetakeRule(manifest);
    this.reasonNames = manifest.outputs.slice(1);
    this.threads = threads;
  }

  // The uint8 S x S x 3 crop of a decoded image (steps 2-3).
  crop(image) {
    return resizeAndCrop(image.rgb, image.width, image.height, this.contract);
  }

  async infer(crop) {
    const S = this.contract.input_size;
    const x = normalise(crop, this.contract);
    const dims = this.contract.layout === 'NCHW' ? [1, 3, S, S] : [1, S, S, 3];
    const input = new Tensor(x, dims);
    const outputs = await this.model.run(input);    // LiteRT.js frees nothing itself: every tensor is deleted
    try {
      return Array.from(outputs[0].toTypedArray());
    } finally {
      input.delete();
      outputs.forEach((t) => t.delete());
    }
  }

  // The 1:1 look (detail.js) when the manifest's rule uses it and the photo is large enough, else null.
  detailStats(image) {
    const side = this.contract.detail_tile ?? 256;
    if (!this.rule.detail || !side) return null;
    const y = centreTileLuma(image.rgb, image.width, image.height, side);
    return y === null ? null : measureDetail(y, side, this.rule.detail.sharpness_measure ?? 'raw');
  }

  // lookAt1to1: false for a live frame (the preview stream's pixels are not the photo's; as score_frame)
  async scoreImage(image, label, t0, decodeMs, lookAt1to1 = true) {
    const t1 = now();
    const crop = this.crop(image);
    const detail = lookAt1to1 ? this.detailStats(image) : null;
    const t2 = now();
    const out = await this.infer(crop);
    const t3 = now();
    if (out.length !== 1 + this.reasonNames.length || !out.every(Number.isFinite)) {
      throw new Error(`the model returned ${out.length} value(s), not all finite: a damaged file or not this manifest's model`);
    }
    const c = this.contract;
    const raw = out[0];
    const score = c.clamp ? Math.min(Math.max(raw, c.score_min), c.score_max) : raw;
    const reasons = {};
    this.reasonNames.forEach((name, i) => { reasons[name] = Math.round(Math.min(Math.max(out[i + 1], 0), 1) * 1e4) / 1e4; });
    let [acceptable, trigger] = this.rule.decide(score, reasons, detail);
    let hint = hintFor(acceptable, trigger, reasons, this.hints);
    const round4 = (v) => (v === null ? null : Math.round(v * 1e4) / 1e4);
    const detailOut = detail === null ? null : {
      noise: round4(detail.noise), sharpness: round4(detail.sharpness),
      sent_back: !acceptable && this.rule.decide(score, reasons)[0] ? trigger : null,
    };
    if (Math.min(image.width, image.height) < c.min_side) {   // a thumbnail cannot show skin detail
      acceptable = false; trigger = 'small'; hint = this.hints.input_hints.small;
      if (detailOut) detailOut.sent_back = null;
    }
    return {
      source: label, score, raw, acceptable, threshold: this.rule.scoreThreshold, reasons,
      hint: hint ? hint.hint : null, label: hint ? hint.label : null,
      top_reason: trigger || topReason(reasons, this.hints.min_probability), detail: detailOut,
      decode_ms: decodeMs, preprocess_ms: t2 - t1, inference_ms: t3 - t2, total_ms: t3 - t0,
      width: image.width, height: image.height,
    };
  }

  // A photo file (Blob): decode with its EXIF orientation, then as any image.
  async scoreBlob(blob, label = blob.name || 'photo') {
    const t0 = now();
    const image = await decodeBlob(blob, this.contract);
    return this.scoreImage(image, label, t0, now() - t0);
  }

  // A live frame (video element, canvas, bitmap): already upright, no EXIF.
  async scoreFrame(source, width, height) {
    const t0 = now();
    checkBudget(width, height, this.contract);
    const image = { rgb: pixelsOf(source, width, height, this.contract), width, height };
    return this.scoreImage(image, 'frame', t0, now() - t0, false);
  }
}
