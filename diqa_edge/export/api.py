"""Export as a Python call: a trained run -> phone files, each gated on parity with PyTorch.

``export(checkpoint, ExportOptions(...)) -> ExportReport`` is what ``python -m diqa_edge.export`` (the
design card's command, ``export/cli.py``) runs; a script, a notebook or another command calls it the same
way. Which formats and precisions exist is the ``formats.FORMATS`` table; the gates are
``parity.DEFAULT_THRESHOLDS`` unless the options say otherwise.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.splits import run_split_part
from ..errors import DiqaError
from ..eval.report import markdown_table
from ..models.load import SHIPPED_MODEL, SHIPPED_RUN
from ..sdk.decision import RetakeRule
from ..sdk.manifest import read_sidecar
from .formats import CALIBRATED, DEFAULT_EVIDENCE, DEFAULT_RULE, FORMATS, SAMPLES, ExportError, ExportJob, converters_to_log, log_tail, validate
from .parity import DEFAULT_THRESHOLDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportOptions:
    """What to export and how it is judged. Every field has the design card's default."""
    out: Path = Path("out/export")
    targets: tuple[str, ...] = tuple(sorted(FORMATS))
    precisions: tuple[str, ...] = ()       # none: each target's own (rebuilding: the bundled file's)
    images: Path | None = None             # parity images (folder or manifest CSV); none: the run's test images
    num_images: int = 60
    calibration: Path | str | None = None  # int8 calibration: folder, manifest CSV or "bundled"
    num_calibration: int = 400
    accept_threshold: float | None = None  # none: the model's own rule's score cut (its reasons' stay)
    min_sensitivity: float = 0.9
    mos_cutoff: float = 5.5
    gates: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_THRESHOLDS))
    dynamic_batch: bool = False
    verbose: bool = False                  # the converters' own output on the terminal, not in OUT/converters.log

    def __post_init__(self) -> None:
        for name in ("out", "images"):                  # a caller's str is a path
            if isinstance(getattr(self, name), str):
                object.__setattr__(self, name, Path(getattr(self, name)))
        if isinstance(self.calibration, str) and self.calibration != BUNDLED:
            object.__setattr__(self, "calibration", Path(self.calibration))
        unknown = [t for t in self.targets if t not in FORMATS]
        if unknown:
            raise ExportError(f"unknown target(s) {', '.join(map(repr, unknown))}; known: {', '.join(sorted(FORMATS))}")


@dataclass
class ExportReport:
    """Every file's row (its gate figures and status), the rule the manifests carry and how it was chosen,
    the report as Markdown (also written to OUT/export_report.md and .json)."""
    model: str
    rows: list[dict]
    rule: RetakeRule
    rule_evidence: dict
    markdown: str

    @property
    def failed(self) -> list[dict]:
        return [r for r in self.rows if r["status"] == "FAILED"]


def export(checkpoint: Path | None = None, options: ExportOptions = ExportOptions()) -> ExportReport:
    """Convert the run at ``checkpoint`` (none: rebuild the bundled model from ``diqa_edge/models/run``,
    each file also compared with the bundled ``default.tflite``) to every target and precision asked, gate
    each file on parity, bind the manifest to each file that passes. Raises ``DiqaError`` / ``ExportError``
    when nothing can be exported; a file that fails its gate is a FAILED row (kept as ``*.failed``)."""
    from ..fileio import atomic_write_text
    from ..models.load import load_trained
    from .parity import torch_outputs

    t_all = time.perf_counter()
    rebuild = checkpoint is None
    plan = {t: validate(t, _precisions(t, options, read_sidecar(SHIPPED_MODEL) if rebuild else None))
            for t in options.targets}
    if rebuild:
        log.info(f"rebuilding the bundled model from {SHIPPED_RUN} (its head) and the packaged ImageNet backbone")
    trained = load_trained(checkpoint or SHIPPED_RUN)
    options.out.mkdir(parents=True, exist_ok=True)
    rule, evidence = _rule_for(trained, options)
    images, calib = _parity_inputs(trained, options, rebuild, plan)
    labelled = f"labelled: {images.labels}" if images.labels and images.labels != "none" else "unlabelled"
    log.info(f"model {trained.name} ({trained.contract.input_size} px), {len(images.paths)} parity images "
          f"({labelled}), {len(calib.paths)} calibration images")
    reference = torch_outputs(trained.model, images, trained.contract)
    artefacts = _convert(trained, plan, options, calib, rule, evidence)
    rows = _gate_all(artefacts, trained, images, reference, options, rebuild)
    md = (f"# Export report: {trained.name}\n\nParity on {len(images.paths)} images ({labelled}), "
          f"thresholds {json.dumps(options.gates)}; total {time.perf_counter() - t_all:.0f} s.\n\n"
          + _report_markdown(rows) + _rule_markdown(rule, evidence))
    atomic_write_text(options.out / "export_report.md", md)
    atomic_write_text(options.out / "export_report.json", json.dumps(rows, indent=1, default=str) + "\n")
    return ExportReport(trained.name, rows, rule, evidence, md)


def _precisions(target: str, options: "ExportOptions", shipped) -> list[str]:
    """The precisions asked for (with several targets, those each supports); by default every one the
    target supports, or, when rebuilding the bundled model, the bundled file's own for its format (fp32
    for the others)."""
    if options.precisions:
        return [p for p in options.precisions if len(options.targets) == 1 or p in FORMATS[target].precisions]
    if shipped is not None:
        return [shipped.precision] if target == shipped.format else ["fp32"]
    return list(FORMATS[target].precisions)


def _against_shipped(art, shipped_scores: np.ndarray, shipped_precision: str, images, contract,
                     thresholds: dict) -> dict:
    """A rebuilt file scored beside the bundled ``default.tflite`` (``shipped_scores``, on the same parity
    images). In the bundled file's own precision it must give the bundled scores (within the fp32 gate:
    the same recipe makes the same file); in another precision, the scores the bundled precision's own
    gate allows (fp16: max |delta|; int8 kinds: the ranking)."""
    from ..eval.metrics import srocc
    from .parity import artefact_scores, meets

    scores = artefact_scores(art.path, images, contract)
    diff = np.abs(scores - shipped_scores)
    figures = {"max_abs": float(diff.max()), "mean_abs": float(diff.mean()), "srocc": srocc(scores, shipped_scores)}
    rule = thresholds["fp32"] if art.precision == shipped_precision else thresholds[shipped_precision]
    same, why = meets(rule, figures, against="the bundled file")
    return {"shipped_max_abs": figures["max_abs"], "shipped_mean_abs": figures["mean_abs"],
            "shipped_srocc": figures["srocc"], "shipped_rule": json.dumps(rule), "shipped_why": why,
            "same_as_shipped": bool(same)}


def _records_or_folder(path: Path, limit: int, seed: int):
    from ..data.loaders import load_manifest
    from .parity import ParityImages

    if path.suffix.lower() == ".csv":
        return ParityImages.from_records(load_manifest(path, skip_bad=True).records, limit, seed)
    if path.is_dir():
        return ParityImages.from_folder(path, limit)
    raise DiqaError(f"{path}: neither a folder of images nor a manifest CSV")


def _rule_on_validation(trained, min_sensitivity: float | None, mos_cutoff: float,
                        out_dir: Path) -> tuple[RetakeRule, dict] | None:
    """A score cut chosen on the model's validation images for the stated target (a run that chose no
    rule at training: BIQ2021 only, or a fine-tuned network); kept with its ROC beside the export (never in
    the training run, which export does not edit). A rule an earlier export into the same folder chose for
    the same target and weights is reused. None when the run has too few validation images."""
    from ..fileio import atomic_write_text
    from ..eval.threshold import choose_threshold, roc_plot
    from .parity import ParityImages, torch_scores

    kept = out_dir / "rule.json"
    if kept.exists():   # chosen by an earlier export into this folder, for the same target and weights
        held = json.loads(kept.read_text())
        evidence = held.get("rule_evidence", {})
        if evidence.get("min_sensitivity") == min_sensitivity and evidence.get("mos_cutoff") == mos_cutoff \
                and held.get("weights") == _weights_key(trained) and (out_dir / "decision_roc.png").exists():
            return RetakeRule.from_dict(held["rule"]), evidence
    val = run_split_part(trained.card, "val")
    if len(val) < 20:
        return None
    images = ParityImages.from_records(val, limit=len(val))
    log.info(f"choosing the accept/retake threshold on {len(val)} validation images ({images.labels})")
    pred = torch_scores(trained.model, images, trained.contract)
    chosen = choose_threshold(pred, images.mos, mos_cutoff=mos_cutoff, min_sensitivity=min_sensitivity,
                              labels=images.labels)
    roc_plot(pred, images.mos, chosen, out_dir / "decision_roc.png", title=f"{trained.name}: accept / retake")
    rule, evidence = chosen.retake_rule(), chosen.evidence()
    atomic_write_text(kept, json.dumps({"rule": rule.to_dict(), "rule_evidence": evidence,
                                        "weights": _weights_key(trained)}, indent=1, default=str) + "\n")
    return rule, evidence


def _weights_key(trained) -> str:
    """Which weights a kept rule (rule.json) was chosen for: the run's weights file, its size and time."""
    if trained.run_dir is None:
        return ""
    weights = trained.run_dir / trained.card.get("weights_file", "best.safetensors")
    stat = weights.stat() if weights.exists() else None
    return f"{weights}:{stat.st_size}:{stat.st_mtime_ns}" if stat else str(weights)


def _rule_markdown(rule: RetakeRule, evidence: dict) -> str:
    if not evidence.get("table"):
        return ""
    table = markdown_table(["target sensitivity", "threshold", "sensitivity", "specificity", "retake rate"],
                           [[f"{r['target_sensitivity']:.2f}", f"{r['threshold']:.3f}", f"{r['sensitivity']:.3f}",
                             f"{r['specificity']:.3f}", f"{r['retake_rate']:.3f}"] for r in evidence["table"]])
    return (f"\n## Accept / retake rule\n\n{rule.describe()}; ROC AUC {evidence['auc']:.3f} "
            f"(`decision_roc.png`). Operating table on the same validation images (stored in every manifest):\n\n"
            + "\n".join(table) + "\n")


def _report_row(r: dict) -> list:
    """One file's cells: its parity figures, or a dash where it could not be executed here."""
    if "max_abs" not in r:
        return [FORMATS[r["target"]].title, r["precision"], f"{r['size_mb']:.2f}", "–", "–", "–", "–",
                r["convert_s"], f"{r['status']}: {r.get('reason', '')}"]
    labels = (f"{r['srocc_vs_labels']:.4f} / {r['srocc_torch_vs_labels']:.4f} ({r['labels']})"
              if "srocc_vs_labels" in r else "–")
    return [r.get("runtime", FORMATS[r["target"]].title), r["precision"], f"{r['size_mb']:.2f}", f"{r['max_abs']:.4f}",
            f"{r['plcc']:.5f}", f"{r['srocc']:.5f}", labels, r["convert_s"], f"{r['status']} ({r['rule']})"]


def _report_markdown(rows: list[dict]) -> str:
    lines = markdown_table(["format", "precision", "size (MB)", "max abs diff", "PLCC vs PyTorch", "SROCC vs PyTorch",
                            "SROCC vs labels (artefact / PyTorch)", "convert (s)", "status"],
                           [_report_row(r) for r in rows])
    reason_rows = [r for r in rows if "reasons_max_abs_by_reason" in r]
    if reason_rows:
        lines.append("\nReasons head (largest probability change from PyTorch per reason; share of images whose "
                     "hint, the top reason with p >= 0.5 or none, is unchanged):\n")
        lines += [f"- {r['target']} {r['precision']}: " + ", ".join(f"{k} {v:.4f}" for k, v in
                  r["reasons_max_abs_by_reason"].items()) + f"; same hint on {r['hint_agreement']:.0%} of images"
                  for r in reason_rows]
    shipped_rows = [r for r in rows if "shipped_max_abs" in r]
    if shipped_rows:
        lines.append("\nRebuilt from the bundled run folder, against the bundled `default.tflite` on the same images "
                     "(in its own precision within the fp32 gate, in another within the bundled precision's gate):\n")
        lines += [f"- {r['target']} {r['precision']}: max |score diff| {r['shipped_max_abs']:.4f}, mean "
                  f"{r['shipped_mean_abs']:.4f}, SROCC {r['shipped_srocc']:.4f} (rule {r['shipped_rule']}): "
                  f"{'the bundled scores' if r['same_as_shipped'] else 'DIFFERENT'}" for r in shipped_rows]
    layer_rows = [r for r in rows if "layers" in r]
    if layer_rows:
        lines.append("\nCore ML layer by layer (reference executor vs PyTorch, first parity image; "
                     "relative RMS difference of each conv/linear layer's input):\n")
        lines += [f"- {r['precision']}: worst {r['layers']['worst_layer']} {r['layers']['worst_rel']:.3g}; "
                  + ("; ".join(r["layers"]["problems"]) or "no layer out of tolerance") for r in layer_rows]
    return "\n".join(lines) + "\n"


def _rule_for(trained, options: "ExportOptions") -> tuple[RetakeRule, dict]:
    """(rule, evidence) for the manifests: the rule the run chose at training (on skin views: never
    replaced by a score cut chosen on BIQ2021), else a score cut chosen on its validation images, else the
    default; ``accept_threshold`` replaces the score cut only (a rule chosen at training keeps its reasons'
    thresholds; a run without one gets that cut alone, and no validation pass is spent choosing another)."""
    given = options.accept_threshold
    if trained.rule is not None:
        if given is None:
            return trained.rule, trained.rule_evidence
        return (trained.rule.with_score_threshold(given),
                {"chosen_on": "score cut given at export (accept_threshold); the reasons' thresholds and the "
                              "1:1 look as chosen at training", "as_chosen": trained.rule_evidence})
    if given is not None:
        return RetakeRule(given), {"chosen_on": "score cut given at export (accept_threshold)"}
    chosen = _rule_on_validation(trained, options.min_sensitivity or None, options.mos_cutoff, options.out)
    return chosen or (DEFAULT_RULE, DEFAULT_EVIDENCE)


BUNDLED = "bundled"   # --calibration bundled: the images of ``parity.bundled_parity_set``


def _parity_inputs(trained, options: "ExportOptions", rebuild: bool, plan: dict):
    """(parity images, int8 calibration images): the given ones, else the model's own test and validation
    images; when rebuilding the bundled model on a machine without them, the bundled samples."""
    from .parity import ParityImages, bundled_parity_set

    seed = int(trained.card.get("split", {}).get("index", 0))
    if options.images:
        images = _records_or_folder(options.images, options.num_images, seed)
    elif rebuild:
        # never the test images this machine happens to hold: the same committed inputs on every machine,
        # so a rebuild is judged on the images the bundled file was judged on
        log.info("parity on the bundled samples and their fault views (they ship with the repository)")
        images = bundled_parity_set(options.out / "parity-images")
    else:
        images = ParityImages.from_records(run_split_part(trained.card, "test"), options.num_images, seed)
    if len(images.decoded(trained.contract)) < 50:
        raise DiqaError(f"parity needs at least 50 decodable images, got {len(images.paths)} "
                        "(pass --images DIR_OR_MANIFEST)")
    calibrated = any(p in CALIBRATED for ps in plan.values() for p in ps)
    if str(options.calibration) == BUNDLED or (rebuild and calibrated and not options.calibration):
        # the bundled file was calibrated on these, so that anyone can rebuild it from the repository
        calib = bundled_parity_set(options.out / "parity-images")
    else:
        calib = (_records_or_folder(options.calibration, options.num_calibration, seed + 1) if options.calibration
                 else ParityImages.from_records(run_split_part(trained.card, "val"), options.num_calibration, seed + 1))
    if not calib.paths and calibrated:
        calib = images
    return images, calib


def _convert(trained, plan: dict, options: "ExportOptions", calib, rule: RetakeRule, evidence: dict) -> list:
    """Every planned file, target by target through the export table (``formats.FORMATS``); the ONNX
    graph is built once, and only when a target needs it (ONNX itself, TFLite's onnx2tf)."""
    from .onnx_target import export_onnx

    meta = {"rule": rule, "rule_evidence": evidence}
    job = ExportJob(options.out, lambda: export_onnx(trained, options.out, dynamic_batch=options.dynamic_batch, **meta),
                    calibration=list(calib.paths), dynamic_batch=options.dynamic_batch, verbose=options.verbose, **meta)
    log_path = options.out / "converters.log"
    if not job.verbose:
        log_path.write_bytes(b"")      # this export's output only
    artefacts = []
    for target, fmt in FORMATS.items():
        if target not in plan:
            continue
        log.info(f"{target}: converting ({', '.join(plan[target])})"
                 + ("" if job.verbose else f"; the converters' own output goes to {log_path}"))
        try:
            with converters_to_log(log_path, job.verbose):
                artefacts += fmt.exporter()(trained, plan[target], job)
        except ExportError as exc:
            tail = "" if job.verbose else log_tail(log_path)
            raise ExportError(f"{exc}" + (f"\n  the converters' last lines ({log_path}):\n    "
                                          + tail.replace("\n", "\n    ") if tail else "")) from exc
    return artefacts


def _gate_all(artefacts: list, trained, images, reference, options: "ExportOptions", rebuild: bool) -> list[dict]:
    """Each file against PyTorch (and, rebuilding, against the bundled file); test vectors beside each
    file that passed."""
    from .parity import ParityImages, artefact_scores, judge, mark_failed, torch_scores
    from .vectors import write_vectors

    photos = sorted(SAMPLES.glob("*.jpg"))[:5]
    vec_images = ParityImages(photos, None)
    vec_reference = torch_scores(trained.model, vec_images, trained.contract).tolist()
    # the bundled file's own scores, once for every rebuilt file that runs here
    shipped = (artefact_scores(SHIPPED_MODEL, images, trained.contract)
               if rebuild and any(FORMATS[a.target].runs_here() for a in artefacts) else None)
    shipped_precision = read_sidecar(SHIPPED_MODEL).precision if shipped is not None else None
    rows = []
    for art in artefacts:
        row = judge(art, reference, images, trained.contract, options.gates, model=trained.model)
        runs = FORMATS[art.target].runs_here()
        if rebuild and runs:   # the file is still under its own name here: it is renamed only below
            row.update(_against_shipped(art, shipped, shipped_precision, images, trained.contract,
                                        options.gates))
            if not row["same_as_shipped"]:
                row["status"] = "FAILED"
                row["rule"] = row.get("rule", "") + f"; against the bundled file: {row['shipped_why']}"
        if row["status"] == "FAILED":
            row["path"] = str(mark_failed(art))
        else:
            if runs:     # the manifest bound to this file (sdk.check): refused beside any other model
                from .bind import bind_manifest

                bind_manifest(art.path)
            expected = artefact_scores(art.path, vec_images, trained.contract).tolist() if runs else None
            write_vectors(art.path, FORMATS[art.target].layout, photos, trained.contract, expected,
                          vec_reference, options.out)
        rows.append(row)
        log.info(f"{art.target:7s} {art.precision:13s} {row['size_mb']:7.2f} MB  {row['status']}"
                 + (f"  ({row['rule']})" if "rule" in row else "")
                 + (f"  against the bundled file: max |score diff| {row['shipped_max_abs']:.4f}"
                    if "shipped_max_abs" in row else "")
                 + (f"\n        kept as {row['path']} (never under the name an app loads)"
                    if row["status"] == "FAILED" else ""))
    return rows
