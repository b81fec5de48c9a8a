"""A trained model loaded from its run folder: weights, contract, card.

A training run folder (``card.json`` + ``best.safetensors``, or a feature model's
``head.safetensors``) says which backbone and contract the weights belong to and
which dataset split they came from (``diqa_edge.data.splits.run_split_part`` reads
that split back, so export calibrates on the model's own validation images and
checks parity on its held-out test images without being told again).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..contract import Contract
from ..errors import DiqaError
from ..sdk.decision import RULE_VERSION, RetakeRule, split_legacy_decision

MODELS_DIR = Path(__file__).resolve().parent
SHIPPED_RUN = MODELS_DIR / "run"                 # the bundled model's run folder (card + head.safetensors)
SHIPPED_MODEL = MODELS_DIR / "default.tflite"    # the bundled model file the SDK scores with


@dataclass
class TrainedModel:
    model: object            # diqa_edge.models.network.IQAModel or pooled_stats.PooledStatsIQA, in eval mode
    contract: Contract
    card: dict
    run_dir: Path | None
    name: str

    @property
    def rule(self) -> RetakeRule | None:
        """The retake rule the run chose at training (on skin views), or None (export then chooses a score
        cut on the run's validation images)."""
        return self._card_rule[0]

    @property
    def rule_evidence(self) -> dict:
        return self._card_rule[1]

    @cached_property
    def _card_rule(self) -> tuple[RetakeRule | None, dict]:
        """The card's rule, read and validated once (the export asks for it several times)."""
        return card_rule(self.card)


def card_rule(card: dict, source: str = "run card") -> tuple[RetakeRule | None, dict]:
    """(rule, evidence) from a run card: ``card["rule"]`` in the rule's JSON form and ``card["rule_evidence"]``;
    a card written before the rule had its form keeps a rule chosen at training on skin views in
    ``card["decision"]`` (read through ``split_legacy_decision``, so older runs still export the rule they
    chose). Some older exports also wrote a score cut chosen on validation there: that is not the run's rule
    (the export chooses one for its own target), so it reads as none. A damaged rule is one ``DiqaError``."""
    found = card.get("rule")
    if found is not None:
        return _rule_of(found, f"{source}: field 'rule'"), _evidence_of(card.get("rule_evidence"), source)
    legacy = card.get("decision")
    if isinstance(legacy, dict) and str(legacy.get("chosen_on", "")).startswith("skin"):
        rule, evidence = split_legacy_decision(legacy, legacy.get("threshold"))
        return _rule_of(rule, f"{source}: field 'decision'"), evidence
    return None, {}


def _rule_of(value, where: str) -> RetakeRule:
    if not isinstance(value, dict) or value.get("version") != RULE_VERSION:
        raise DiqaError(f"{where} is not a retake rule of version {RULE_VERSION}: {str(value)[:120]}")
    try:
        rule = RetakeRule.from_dict(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DiqaError(f"{where} is damaged ({type(exc).__name__}: {exc})") from None
    if not all(math.isfinite(t) for t in (rule.score_threshold, *rule.reason_thresholds.values())):
        raise DiqaError(f"{where} holds a threshold that is not a finite number")
    return rule


def _evidence_of(value, source: str) -> dict:
    if value is not None and not isinstance(value, dict):
        raise DiqaError(f"{source}: field 'rule_evidence' must be a JSON object, got {type(value).__name__}")
    return dict(value or {})


def read_run_card(run_dir: Path, required: tuple[str, ...]) -> dict:
    """A run's ``card.json``, with one clear error when it is unreadable, not JSON, or lacks a field
    the loader needs (a card edited by hand or cut short by a full disk)."""
    return read_card(run_dir / "card.json", required)


def read_card(path: Path, required: tuple[str, ...] = ()) -> dict:
    """A run card at ``path`` (``card.json``, or the bundled ``default.card.json``), validated as above."""
    try:
        card = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise DiqaError(f"{path}: cannot read the run card ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DiqaError(f"{path}: the run card is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise DiqaError(f"{path}: the run card is a JSON object, got {type(card).__name__}")
    missing = [name for name in required if name not in card]
    if missing:
        raise DiqaError(f"{path}: the run card lacks the field(s) {', '.join(map(repr, missing))}")
    return card


def load_trained(path: str | Path) -> TrainedModel:
    """``path``: a run folder, its ``best.safetensors``, or its ``card.json``."""
    from .network import build_model

    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    if not (run_dir / "card.json").exists():
        raise DiqaError(f"{path}: not a training run (no card.json, as `diqa-edge train` writes it)")
    card = read_run_card(run_dir, ("backbone", "contract"))
    kind = card.get("model_kind", "finetune")      # cards before 2026-12-05 of fine-tuned runs carry none
    if kind == "pooled_stats":
        return _load_pooled_stats(run_dir)
    if kind != "finetune":
        raise DiqaError(f"{run_dir}: the run card's model_kind {kind!r} is not one this version loads "
                        "(pooled_stats, finetune)")
    weights = path if path.suffix == ".safetensors" else run_dir / "best.safetensors"
    if not weights.exists():
        raise DiqaError(f"{weights}: not found (a fine-tuned run keeps its weights there, as `diqa-edge train` "
                        "writes them)")
    contract = Contract.from_dict(card["contract"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # the weights come from the run, not from ImageNet
            built = build_model(card["backbone"], pretrained=False, input_size=contract.input_size,
                                reasons=tuple(card.get("outputs", ["score"])[1:]))
        load_weights(built.model, weights)
    except (KeyError, ValueError, TypeError, RuntimeError, OSError) as exc:
        raise DiqaError(f"{run_dir}: not a loadable training run ({type(exc).__name__}: {exc})") from None
    built.model.eval()
    name = f"{card['backbone']}-{'+'.join(card.get('trained_on', []))}"
    return TrainedModel(built.model, contract, card, run_dir, name)


def _load_pooled_stats(run_dir: Path) -> TrainedModel:
    """A feature-model run: the frozen backbone rebuilt from the packaged ImageNet weights, the fitted
    linear layer read from ``head.safetensors`` (the only trained tensors, small enough to commit)."""
    from safetensors.torch import load_file

    from .pooled_stats import build_pooled_stats

    card = read_run_card(run_dir, ("backbone", "contract", "stages", "outputs"))
    if not (run_dir / "head.safetensors").exists():
        raise DiqaError(f"{run_dir / 'head.safetensors'}: not found (a feature-model run keeps its heads there)")
    try:
        contract = Contract.from_dict(card["contract"])
        built = build_pooled_stats(card["backbone"], tuple(card["stages"]), tuple(card["outputs"][1:]),
                                   input_size=contract.input_size)
        state = load_file(str(run_dir / "head.safetensors"))
        built.model.head.load_state_dict({k.removeprefix("head."): v for k, v in state.items() if k.startswith("head.")})
        tuned = {k.removeprefix("trunk."): v for k, v in state.items() if k.startswith("trunk.")}
        if tuned:   # stages fine-tuned past ImageNet (training/tail_tuning.py): they replace the packaged ones
            unexpected = built.model.trunk.load_state_dict(tuned, strict=False).unexpected_keys
            if unexpected:
                raise KeyError(f"trunk tensors the model lacks: {unexpected[:3]}")
        if card.get("score_head", {}).get("kind") == "svr-rbf":   # pooled_stats.KernelScore
            rank = state["kernel.basis"].shape[1] if "kernel.basis" in state else None   # KernelScore.reduced
            built.model.attach_kernel(state["kernel.centres"].shape[0], rank).load_state_dict(
                {k.removeprefix("kernel."): v for k, v in state.items() if k.startswith("kernel.")})
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        raise DiqaError(f"{run_dir}: not a loadable feature-model run ({type(exc).__name__}: {exc})") from None
    built.model.eval()
    name = f"{card['backbone']}-pooled-{'+'.join(card.get('trained_on', []))}"
    return TrainedModel(built.model, contract, card, run_dir, name)


def load_weights(model, path: Path) -> None:
    """A run's ``safetensors`` into ``model`` (unwrapped from DistributedDataParallel when wrapped)."""
    from safetensors.torch import load_file

    (model.module if hasattr(model, "module") else model).load_state_dict(load_file(str(path)))
