// The accept / retake rule of the model's manifest and the patient's hint, as the SDK applies them
// (diqa_edge/sdk/decision.py, diqa_edge/sdk/hints.py, PreviewGate in diqa_edge/sdk/frames.py).
// The sentences come from hints.json, which the site build writes from the SDK's own table.

import { detailTrigger } from './detail.js';

// the rule's JSON form this page reads (RULE_VERSION in diqa_edge/sdk/decision.py): the site writes the
// manifest through the SDK, which reads older manifests and writes this form
const RULE_VERSION = 1;

export class RetakeRule {
  constructor(manifest) {
    const rule = manifest.rule;
    if (!rule || rule.version !== RULE_VERSION) {
      throw new Error(`the manifest's rule is version ${rule && rule.version}; this page reads version ${RULE_VERSION}`);
    }
    this.scoreThreshold = rule.score_threshold;
    this.reasonThresholds = rule.reason_thresholds || {};
    // the 1:1 rule, when it has a threshold (as DetailRule.from_dict in the SDK)
    const d = rule.detail;
    this.detail = d && (d.noise_max != null || d.sharpness_min != null) ? d : null;
  }

  // The rule in one sentence, as RetakeRule.describe in the SDK writes it.
  describe() {
    let text = `retake when the score is below ${this.scoreThreshold.toFixed(3)}`;
    if (Object.keys(this.reasonThresholds).length) text += " or a reason's probability is above its threshold";
    if (this.detail) {
      const parts = [];
      if (this.detail.noise_max != null) parts.push(`noise > ${this.detail.noise_max.toFixed(2)}`);
      if (this.detail.sharpness_min != null) parts.push(`sharpness < ${this.detail.sharpness_min.toFixed(2)}`);
      text += ` or, at 1:1, ${parts.join(' or ')}`;
    }
    return text;
  }

  // [acceptable, the reason that sent it back or null]: the reason furthest past its threshold
  // wins; then the 1:1 tile's measures (detail.js), when measured; a photo sent back only by its
  // score has no reason from the rule.
  decide(score, reasons, detail = null) {
    let trigger = null, best = -Infinity;
    for (const [name, t] of Object.entries(this.reasonThresholds)) {
      if (name in reasons && reasons[name] > t && reasons[name] - t > best) {
        trigger = name; best = reasons[name] - t;
      }
    }
    if (trigger !== null) return [false, trigger];
    if (score < this.scoreThreshold) return [false, null];
    const atFullSize = detailTrigger(this.detail, detail);
    return [atFullSize === null, atFullSize];
  }
}

export function topReason(reasons, minProbability) {
  let name = null, p = -Infinity;
  for (const [k, v] of Object.entries(reasons)) if (v > p) { name = k; p = v; }
  return name !== null && p >= minProbability ? name : null;
}

// The hint for a result: the rule's reason, else the most probable cause when the head is sure,
// else the generic sentence; an accepted photo gets none.
export function hintFor(acceptable, trigger, reasons, hints) {
  if (acceptable) return null;
  if (trigger) return (hints.hints[trigger] || hints.input_hints[trigger] || hints.generic);
  const name = topReason(reasons, hints.min_probability);
  return name !== null ? (hints.hints[name] || hints.generic) : hints.generic;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// The 1:1 measures' median over the frames that have them (null when none does).
function medianDetail(results) {
  const measured = results.map(r => r.detail).filter(d => d);
  if (!measured.length) return null;
  const sharp = measured.map(d => d.sharpness).filter(v => v !== null);
  return { noise: median(measured.map(d => d.noise)), sharpness: sharp.length ? median(sharp) : null };
}

// A live preview's answer: the rule on the median score and median reasons of the last `window`
// frames, changed only when the new answer has held for `hold` frames in a row.
export class PreviewGate {
  constructor(rule, window = 5, hold = 3) {
    this.rule = rule; this.window = window; this.hold = hold;
    this.recent = []; this.answer = null; this.pending = null;
  }

  update(result) {
    this.recent = [...this.recent, result].slice(-this.window);
    const score = median(this.recent.map(r => r.score));
    const reasons = {};
    for (const k of Object.keys(result.reasons)) reasons[k] = median(this.recent.map(r => r.reasons[k]));
    const small = this.recent.some(r => r.top_reason === 'small');
    const candidate = small ? [false, 'small'] : this.rule.decide(score, reasons, medianDetail(this.recent));
    if (this.answer === null) {
      this.answer = candidate;
    } else if (candidate[0] !== this.answer[0]) {
      const count = this.pending && this.pending[0][0] === candidate[0] ? this.pending[1] + 1 : 1;
      this.pending = [candidate, count];
      if (count >= this.hold) { this.answer = candidate; this.pending = null; }
    } else {
      this.answer = candidate; this.pending = null;
    }
    return { acceptable: this.answer[0], trigger: this.answer[1], score, reasons };
  }
}
