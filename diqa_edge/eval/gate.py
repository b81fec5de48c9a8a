"""The skin gate: choose the accept / retake rule on validation views, and judge it on unseen ones.

Views are described by plain arrays (family name or "none", level 0-5) so this
layer needs nothing from the data loaders. Targets (issue 18): at least 95 % of
pristine photos accepted, every family sent back at levels 4-5, level-1 views
that people rate as near-imperceptible mostly accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sdk.decision import RetakeRule
from .metrics import binary_auc

PRISTINE_MARGIN = 0.97          # on calibration views, so that the 0.95 target holds on new photos
MILD_TARGET = 0.85              # the views that must pass besides the pristine (mild, darker tone, natural)
QUANTILES = tuple(np.round(np.linspace(0.001, 0.03, 30), 4))
# where the pristine margin is held: over every skin photo, or for each set's photos (``Views.domains``)
RULE_MARGINS = ("pooled", "per-domain")


@dataclass(frozen=True)
class Views:
    """What is known of each view: its fault family ("none" for the pristine photo; any other name without a
    level, e.g. "natural", for good photos from elsewhere that must pass) and level."""
    families: np.ndarray
    levels: np.ndarray
    domains: np.ndarray | None = None     # the set each view came from ("derm", "phone", "natural"), if known

    @classmethod
    def of(cls, records, with_domains: bool = False) -> "Views":
        """``with_domains``: each view's set as its domain, so a rule search holds the pristine margin per
        domain (off by default: the shipped rule was chosen with one margin over all skin photos)."""
        return cls(np.array([r.distortion or "none" for r in records]), np.array([r.level or 0 for r in records]),
                   np.array([r.dataset for r in records]) if with_domains else None)

    def cell_names(self) -> np.ndarray:
        """Each view's cell as "domain/family" ("/family" without domains)."""
        domains = self.domains if self.domains is not None else np.full(len(self.families), "")
        return np.char.add(np.char.add(domains.astype(str), "/"), self.families.astype(str))

    def severe_cells(self) -> np.ndarray:
        """Each severe view's cell (its domain and family) as an integer, -1 for the others: the unit a
        balanced search counts in, so that a family with few views weighs as much as one with many."""
        severe = self.severe() & (self.families != "darker_tone")
        names = self.cell_names()
        cells = np.full(len(names), -1)
        _, cells[severe] = np.unique(names[severe], return_inverse=True)
        return cells

    @property
    def pristine(self) -> np.ndarray:
        return self.families == "none"

    def severe(self, levels=(4, 5)) -> np.ndarray:
        return ~self.pristine & np.isin(self.levels, levels)


@dataclass(frozen=True)
class ChosenRule:
    rule: RetakeRule
    kind: str                    # "score", "score+reasons" or "score+reasons, greedy"
    quantile: float              # each threshold's tail share of the views that must pass (nan: greedy; null in JSON)
    calibration: dict            # the rates it reached on the calibration views

    def evidence(self) -> dict:
        """How the rule was chosen and what it reached on the calibration views (the card's and the
        manifest's ``rule_evidence``; the thresholds themselves live in the rule only)."""
        return {"kind": self.kind, "quantile": None if self.quantile != self.quantile else self.quantile,
                "chosen_on": "skin calibration views (never the test part)", "calibration": self.calibration}


def rates(retake: np.ndarray, views: Views, mild: np.ndarray) -> dict:
    return {"pristine_accept": float(1 - retake[views.pristine].mean()),
            "severe_retake": float(retake[views.severe()].mean()),
            "severe_retake_worst_family": float(min(retake[views.severe() & (views.families == f)].mean()
                                                    for f in np.unique(views.families[views.severe()]))),
            "mild_accept": float(1 - retake[mild].mean()) if mild.any() else float("nan"),
            **({"natural_accept": float(1 - retake[views.families == "natural"].mean())}
               if (views.families == "natural").any() else {}),
            **({f"pristine_accept_{d}": float(1 - retake[views.pristine & (views.domains == d)].mean())
                for d in np.unique(views.domains[views.pristine])} if views.domains is not None else {}),
            "n": int(len(retake))}


def rule_at(outputs: np.ndarray, acceptable: np.ndarray, reasons: tuple[str, ...], q: float,
            with_reasons: bool) -> RetakeRule:
    """Every threshold at the ``q`` tail of the views that should pass (pristine and mild): the score's low
    tail, each reason's high tail. One share for all keeps the search one-dimensional and the rule
    explainable: each part of the rule alone sends back about ``q`` of the good photos."""
    good = outputs[acceptable]
    score_t = float(np.quantile(good[:, 0], q))
    reason_t = {}
    if with_reasons:
        reason_t = {r: float(min(np.quantile(good[:, 1 + k], 1 - q), 0.999)) for k, r in enumerate(reasons)}
    return RetakeRule(score_t, reason_t)


def _next_thresholds(values: np.ndarray, current: float, below: bool, steps: int) -> list[float]:
    """The next ``steps`` thresholds that each send back one more of ``values`` (good views still passing)."""
    if below:   # the score: retake when value < t, so raise t just past the next passing values
        passing = np.unique(values[values >= current])
        return [float(v) + 1e-6 for v in passing[:steps]]
    passing = np.unique(values[values <= current])[::-1]      # a reason: retake when value > t
    return [float(v) - 1e-6 for v in passing[:steps]]


# How a greedy step values the severe views it sends back (``SEARCHES``):
#   "views": each view alike (the shipped rule's search: plentiful, easy families win);
#   "cells": each (domain, family) cell alike, a view weighing 1 / its cell's size;
#   "coverage": as "cells", but a cell stops counting once COVERAGE_TARGET of it is sent back, so the
#   budget goes to the cells still short of the target.
SEARCHES = ("views", "cells", "coverage")
COVERAGE_TARGET = 0.95


def _search_gain(search: str, cells: np.ndarray, retake: np.ndarray, new: np.ndarray) -> float:
    severe = cells >= 0
    if search == "views":
        return float((new & severe).sum())
    size = np.bincount(cells[severe])
    before = np.bincount(cells[severe & retake], minlength=len(size))
    added = np.bincount(cells[severe & new], minlength=len(size))
    if search == "cells":
        return float((added / size).sum())
    cap = COVERAGE_TARGET * size
    return float(((np.minimum(before + added, cap) - np.minimum(before, cap)) / size).sum())


def greedy_rule(outputs: np.ndarray, views: Views, reasons: tuple[str, ...], mild: np.ndarray,
                lookahead: int = 8, search: str = "views") -> RetakeRule:
    """Spend the false-retake budget where it buys the most: start from a rule that sends nothing back and
    repeatedly move the one threshold (the score's or a reason's) whose next step sends back the most
    severe views (valued by ``search``) per good view it costs, while pristine (in every domain) and mild
    acceptance stay within their targets."""
    good = views.pristine | mild
    cells = views.severe_cells()
    score_t, reason_t = -np.inf, {r: 1.0 for r in reasons}
    retake = np.zeros(len(outputs), bool)
    columns = {None: outputs[:, 0], **{r: outputs[:, 1 + k] for k, r in enumerate(reasons)}}
    while True:
        best = None
        for name, col in columns.items():
            current = score_t if name is None else reason_t[name]
            for t in _next_thresholds(col[good & ~retake], current, name is None, lookahead):
                hit = (col < t) if name is None else (col > t)
                new = hit & ~retake
                cost = int((new & good).sum())
                if not cost:
                    continue
                if not _within_targets(retake | hit, views, mild):
                    break
                gain = _search_gain(search, cells, retake, new) / cost
                if best is None or gain > best[0]:
                    best = (gain, name, t, hit)
        if best is None or best[0] <= 0:
            break
        _, name, t, hit = best
        if name is None:
            score_t = t
        else:
            reason_t[name] = t
        retake |= hit
    return RetakeRule(float(score_t) if np.isfinite(score_t) else float(outputs[:, 0].min()) - 1.0,
                      {r: float(t) for r, t in reason_t.items() if t < 1.0})


def _within_targets(retake: np.ndarray, views: Views, mild: np.ndarray) -> bool:
    """Pristine views accepted >= PRISTINE_MARGIN in each domain (a phone photo is not paid for by a
    dermoscopy one) and mild views >= MILD_TARGET."""
    domains = views.domains if views.domains is not None else np.zeros(len(retake))
    for d in np.unique(domains[views.pristine]):
        m = views.pristine & (domains == d)
        if 1 - retake[m].mean() < PRISTINE_MARGIN:
            return False
    return not (mild.any() and 1 - retake[mild].mean() < MILD_TARGET)


def choose_rule(outputs: np.ndarray, views: Views, reasons: tuple[str, ...], mild: np.ndarray,
                search: str = "views") -> ChosenRule:
    """The best of: a score threshold alone, one shared tail share for every threshold, and the greedy
    per-threshold allocation: the most severe views sent back (valued by ``search``) while accepting
    >= PRISTINE_MARGIN of pristine calibration views in each domain and >= MILD_TARGET of mild ones."""
    if search not in SEARCHES:
        raise ValueError(f"unknown rule search {search!r}; known: {', '.join(SEARCHES)}")
    best = None
    acceptable = views.pristine | mild
    cells = views.severe_cells()
    candidates = []
    for q in QUANTILES:
        candidates.append(("score", float(q), rule_at(outputs, acceptable, reasons, float(q), False)))
        if reasons and outputs.shape[1] > 1:
            candidates.append(("score+reasons", float(q), rule_at(outputs, acceptable, reasons, float(q), True)))
    if reasons and outputs.shape[1] > 1:
        candidates.append(("score+reasons, greedy" + ("" if search == "views" else f" by {search}"), float("nan"),
                           greedy_rule(outputs, views, reasons, mild, search=search)))
    nothing = np.zeros(len(outputs), bool)
    for kind, q, rule in candidates:
        retake = rule.retake_mask(outputs, reasons)
        got = rates(retake, views, mild)
        ok = _within_targets(retake, views, mild)
        key = (ok, _search_gain(search, cells, nothing, retake) if ok else got["pristine_accept"])
        if best is None or key > best[0]:
            best = (key, ChosenRule(rule, kind, q, got))
    return best[1]


def caught_alone(values: np.ndarray, faulty: np.ndarray, must_pass: np.ndarray,
                 accept=(0.97, 0.95)) -> dict[str, float]:
    """The share of the ``faulty`` views one output alone sends back (``values`` above its threshold)
    when that threshold lets ``accept`` of the ``must_pass`` views through: how far that output gets
    with the whole false-retake budget to itself (a rule ORs several outputs, so it is not a bound)."""
    values = np.asarray(values, float)
    return {str(a): float((values[faulty] > np.quantile(values[must_pass], a)).mean()) for a in accept}


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95 % Wilson interval of a rate k / n (sound at 0 and 1, unlike the normal approximation)."""
    if n == 0:
        return [float("nan"), float("nan")]
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def auc(bad_faulty, bad_pristine) -> float:
    """P(a faulty view is further into retake than a pristine one), ties half."""
    bad_faulty, bad_pristine = np.asarray(bad_faulty, float), np.asarray(bad_pristine, float)
    return binary_auc(np.concatenate([bad_faulty, bad_pristine]),
                      np.r_[np.ones(len(bad_faulty), bool), np.zeros(len(bad_pristine), bool)])


def acceptance_table(retake: np.ndarray, views: Views, badness: np.ndarray | None = None) -> dict:
    """Per family: retake rate [Wilson CI] at each level, AUC faulty-vs-pristine of ``badness`` (higher =
    worse; e.g. minus the score), and the pristine accept rate."""
    table = {"pristine": {"accept": float(1 - retake[views.pristine].mean()),
                          "accept_ci": wilson(int((~retake[views.pristine]).sum()), int(views.pristine.sum())),
                          "n": int(views.pristine.sum())}, "families": {}}
    for fam in sorted(set(views.families[~views.pristine])):
        row = {}
        for level in range(1, 6):
            m = (views.families == fam) & (views.levels == level)
            if m.any():
                row[str(level)] = {"retake": float(retake[m].mean()), "ci": wilson(int(retake[m].sum()), int(m.sum())),
                                   "n": int(m.sum())}
        if badness is not None:
            m = views.families == fam
            row["auc"] = auc(badness[m], badness[views.pristine])
            sev = m & np.isin(views.levels, (4, 5))
            row["auc_severe"] = auc(badness[sev], badness[views.pristine])
        table["families"][fam] = row
    return table


def gate_badness(outputs: np.ndarray, rule: RetakeRule, reasons: tuple[str, ...]) -> np.ndarray:
    """One continuous 'how far into retake' number for ROC curves: the largest of the score's distance below
    its threshold and each reason's distance above its own, so the ROC passes through the rule itself."""
    outputs = np.asarray(outputs, float).reshape(len(outputs), -1)
    worst = (rule.score_threshold - outputs[:, 0]) / 9.0
    for r, t in rule.reason_thresholds.items():
        worst = np.maximum(worst, outputs[:, 1 + reasons.index(r)] - t)
    return worst


def roc_figure(curves: dict[str, tuple[np.ndarray, np.ndarray]], views: Views, path, title: str) -> None:
    """ROC per family (faulty at levels 4-5 vs pristine) for each named gate: ``curves[name] = (badness,
    retake)``; the operating point of the rule is marked."""
    from .plots import pyplot

    plt = pyplot()

    families = sorted(set(views.families[views.severe()]))
    cols = 3
    rows = int(np.ceil(len(families) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 3.2, rows * 3.0), squeeze=False)
    for ax, fam in zip(axes.ravel(), families):
        sev = views.severe() & (views.families == fam)
        for name, (bad, retake) in curves.items():
            neg = np.sort(bad[views.pristine])
            pos = bad[sev]
            ts = np.unique(np.concatenate([neg, pos]))[::-1]
            fpr = [(neg >= t).mean() for t in ts]
            tpr = [(pos >= t).mean() for t in ts]
            line, = ax.plot([0] + fpr + [1], [0] + tpr + [1], label=name, lw=1.2)
            ax.plot(retake[views.pristine].mean(), retake[sev].mean(), "o", color=line.get_color(), ms=4)
        ax.set_title(f"{fam} (levels 4-5)", fontsize=9)
        ax.set_xlim(-0.02, 1)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(families):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7, loc="lower right")
    fig.supxlabel("pristine sent back (1 - specificity)", fontsize=9)
    fig.supylabel("faulty sent back (sensitivity)", fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
