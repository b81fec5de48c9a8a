// The page: a photo file or the camera's live preview, scored by the exported model, with the
// answer a patient would see. `window.diqa` exposes the same steps to the parity test.

import { loadScorer } from './scorer.js';
import { decodeBlob, normalise } from './contract.js';
import { PreviewGate, hintFor } from './rule.js';

const $ = (id) => document.getElementById(id);
const CHECKS_PER_SECOND = 4;       // live preview: a check every 250 ms at most
let scorer = null, stream = null, gate = null, liveTimer = null, busy = false;

function setStatus(text, error = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

function render(result, answer = null) {
  const acceptable = answer ? answer.acceptable : result.acceptable;
  const verdict = acceptable ? 'Good enough: send it' : 'Please retake';
  $('result').hidden = false;
  $('verdict').textContent = verdict;
  $('verdict').className = acceptable ? 'accept' : 'retake';
  $('badge').hidden = false;
  $('badge').textContent = acceptable ? 'Accept' : 'Retake';
  $('badge').className = acceptable ? 'accept' : 'retake';
  const score = answer ? answer.score : result.score;
  $('score').textContent = `Quality ${score.toFixed(2)} of 10 (retake below ${scorer.rule.scoreThreshold.toFixed(2)})` +
    (answer ? ', median of the last frames' : '');
  const steadied = answer ? hintFor(answer.acceptable, answer.trigger, answer.reasons, scorer.hints) : null;
  const hint = answer ? (steadied && steadied.hint) : result.hint;
  $('hint').textContent = hint || 'Sharp, well lit and close enough.';
  const rows = Object.entries(answer ? answer.reasons : result.reasons).map(([name, p]) => {
    const t = scorer.rule.reasonThresholds[name];
    const label = (scorer.hints.hints[name] || { label: name }).label;
    return `<tr class="${t !== undefined && p > t ? 'over' : ''}"><td>${label}</td>` +
      `<td style="width:55%"><div class="bar" style="width:${(100 * p).toFixed(0)}%"></div></td>` +
      `<td>${p.toFixed(2)}</td></tr>`;
  });
  const d = result.detail, rule = scorer.rule.detail;
  if (d && rule && !answer) {   // the look at 1:1 (detail.js): the measures against their thresholds
    const noisy = rule.noise_max != null && d.noise > rule.noise_max;
    const soft = rule.sharpness_min != null && d.sharpness !== null && d.sharpness < rule.sharpness_min;
    if (rule.noise_max != null) {
      rows.push(`<tr class="${noisy ? 'over' : ''}"><td>grain at 1:1</td><td>noise ${d.noise.toFixed(1)} ` +
        `(retake above ${rule.noise_max.toFixed(1)})</td><td></td></tr>`);
    }
    if (rule.sharpness_min != null) {
      rows.push(`<tr class="${soft ? 'over' : ''}"><td>sharpness at 1:1</td><td>` +
        (d.sharpness === null ? 'no detail to judge' : `${d.sharpness.toFixed(2)} (retake below ${rule.sharpness_min.toFixed(2)})`) +
        '</td><td></td></tr>');
    }
  }
  $('reasons').tBodies[0].innerHTML = rows.join('');
  $('timing').textContent = `${result.width} x ${result.height} px: decode ${result.decode_ms.toFixed(0)} ms, ` +
    `preprocessing ${result.preprocess_ms.toFixed(0)} ms, model ${result.inference_ms.toFixed(0)} ms ` +
    `(WebAssembly, ${scorer.threads} thread${scorer.threads > 1 ? 's' : ''})`;
}

function showError(err) {
  $('result').hidden = true;
  $('badge').hidden = true;
  setStatus(`This photo cannot be checked: ${err.message}`, true);
}

async function checkPhoto(blob, label) {
  stopCamera();
  $('empty').hidden = true;
  const img = $('photo');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(blob);
  img.hidden = false;
  try {
    const result = await scorer.scoreBlob(blob, label);
    setStatus(`Checked ${label}.`);
    render(result);
    return result;
  } catch (err) {
    showError(err);
    return null;
  }
}

async function liveCheck() {
  const video = $('video');
  if (busy || !stream || video.readyState < 2) return;
  busy = true;
  try {
    const result = await scorer.scoreFrame(video, video.videoWidth, video.videoHeight);
    render(result, gate.update(result));
    window.diqa.live = { frames: (window.diqa.live?.frames || 0) + 1, last: result };
  } catch (err) {
    showError(err);
  } finally {
    busy = false;
  }
}

async function startCamera() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: false, video: { facingMode: { ideal: 'environment' }, width: { ideal: 1920 }, height: { ideal: 1080 } } });
  } catch (err) {
    setStatus(`The camera could not be opened (${err.name}): choose a photo instead.`, true);
    return;
  }
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  $('photo').hidden = true; $('empty').hidden = true; video.hidden = false;
  $('capture').disabled = false;
  $('camera').textContent = 'Stop camera';
  gate = new PreviewGate(scorer.rule);
  liveTimer = setInterval(liveCheck, 1000 / CHECKS_PER_SECOND);
  setStatus('Live check on the preview; press "Check this frame" to check one frame on its own.');
}

function stopCamera() {
  if (liveTimer) clearInterval(liveTimer);
  liveTimer = null;
  if (stream) stream.getTracks().forEach(t => t.stop());
  stream = null;
  $('video').hidden = true;
  $('capture').disabled = true;
  $('camera').textContent = 'Start camera';
}

async function captureFrame() {
  const video = $('video');
  const frame = await createImageBitmap(video);
  stopCamera();
  const canvas = document.createElement('canvas');
  canvas.width = frame.width; canvas.height = frame.height;
  canvas.getContext('2d').drawImage(frame, 0, 0);
  const blob = await new Promise(resolve => canvas.toBlob(resolve, 'image/png'));
  frame.close();
  return checkPhoto(blob, 'captured frame');
}

async function fetchBlob(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.blob();
}

function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, b => b.toString(16).padStart(2, '0')).join('');
}

// What the parity test and the benchmark call (headless Chromium, through Playwright).
window.diqa = {
  ready: null,
  live: null,
  info: () => ({ name: scorer.manifest.name, input_size: scorer.contract.input_size, threads: scorer.threads,
                 isolated: globalThis.crossOriginIsolated, threshold: scorer.rule.scoreThreshold,
                 rule: scorer.rule.describe() }),
  scoreUrl: async (url) => scorer.scoreBlob(await fetchBlob(url), url),
  showUrl: async (url) => checkPhoto(await fetchBlob(url), url.split('/').pop()),
  cropOfUrl: async (url) => {
    const image = await decodeBlob(await fetchBlob(url), scorer.contract);
    return { width: image.width, height: image.height, crop: toBase64(scorer.crop(image)) };
  },
  // a camera-sized frame (the photo scaled to cover width x height, centered), scored as a live frame
  scoreFrameOfUrl: async (url, width, height) => {
    const bitmap = await createImageBitmap(await fetchBlob(url));
    const canvas = new OffscreenCanvas(width, height);
    const s = Math.max(width / bitmap.width, height / bitmap.height);
    const w = bitmap.width * s, h = bitmap.height * s;
    canvas.getContext('2d').drawImage(bitmap, (width - w) / 2, (height - h) / 2, w, h);
    bitmap.close();
    return scorer.scoreFrame(canvas, width, height);
  },
  // the 1:1 tile's measures of a photo (detail.js), for the test vectors
  detailOfUrl: async (url) => {
    const image = await decodeBlob(await fetchBlob(url), scorer.contract);
    return scorer.detailStats(image);
  },
  tensorOfUrl: async (url, layout) => {
    const image = await decodeBlob(await fetchBlob(url), scorer.contract);
    const x = normalise(scorer.crop(image), scorer.contract, layout);
    return { sha256: await sha256Hex(new Uint8Array(x.buffer)), first_values: Array.from(x.subarray(0, 8)),
             b64: toBase64(new Uint8Array(x.buffer)) };
  },
};

async function main() {
  try {
    scorer = await loadScorer();
  } catch (err) {
    setStatus(`The model could not be loaded: ${err.message}`, true);
    throw err;
  }
  const info = window.diqa.info();
  setStatus(`Model ready (${info.input_size} px, ${info.threads} thread${info.threads > 1 ? 's' : ''}). ` +
            'Start the camera, or choose a photo.');
  $('model').textContent = `${scorer.manifest.name}, ${scorer.rule.describe()}`;
  for (const id of ['camera', 'file', 'samples']) $(id).disabled = false;
  $('camera').onclick = () => (stream ? stopCamera() : startCamera());
  $('capture').onclick = captureFrame;
  $('file').onchange = (e) => { const f = e.target.files[0]; if (f) checkPhoto(f, f.name); };
  const photos = await (await fetch('photos.json')).json();
  for (const p of photos.filter(p => p.startsWith('samples/'))) {
    const o = document.createElement('option');
    o.value = p; o.textContent = p.split('/').pop();
    $('samples').append(o);
  }
  $('samples').onchange = async (e) => { if (e.target.value) await window.diqa.showUrl(e.target.value); };
  if (!navigator.mediaDevices?.getUserMedia) $('camera').disabled = true;
  return info;
}

window.diqa.ready = main();
