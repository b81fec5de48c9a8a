"""What the app tells the patient when a photo fails: one table, so an app can translate it.

Keys are the reasons head's output names (``diqa_edge.data.distort.REASONS``,
also listed in every model manifest's ``outputs``). ``label`` is a short name
for a list or a log; ``hint`` is the sentence shown to the patient.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_PROBABILITY = 0.5   # below this the head is not sure enough to name a cause


@dataclass(frozen=True)
class Hint:
    label: str
    hint: str


HINTS: dict[str, Hint] = {
    "blur": Hint("blurred", "Hold the phone still and tap the skin on the screen to focus."),
    "dark": Hint("too dark", "Move to a brighter place or turn on more light."),
    "bright": Hint("too bright", "Move out of direct sunlight and turn the flash off."),
    "contrast": Hint("washed out", "Light the skin from the front, not from behind, and wipe the lens."),
    "noise": Hint("grainy or over-sharpened", "Add light and turn off beauty or sharpening filters."),
    "jpeg": Hint("compressed or pixelated", "Send the original photo, not a compressed copy or a screenshot."),
    "colour": Hint("colours look wrong", "Turn off colour filters and take the photo in daylight or white light."),
    "glare": Hint("light reflection", "Turn off the flash or tilt the phone so the light does not reflect on the skin."),
    "obstruction": Hint("something in the way", "Keep fingers, clothing and the phone case out of the picture."),
}
# Checks the SDK makes on the input itself, before the model has a say (the contract's pixel budget).
INPUT_HINTS: dict[str, Hint] = {
    "small": Hint("too small", "Move closer so the skin fills the screen, and send the photo itself, not a thumbnail."),
}
GENERIC = Hint("low quality", "Retake the photo in good light, holding the phone still, close to the skin.")


def top_reason(reasons: dict[str, float], min_probability: float = MIN_PROBABILITY) -> str | None:
    """The most probable reason, when the head is sure enough; None otherwise."""
    if not reasons:
        return None
    name, p = max(reasons.items(), key=lambda kv: kv[1])
    return name if p >= min_probability else None


def hint_for(reasons: dict[str, float], acceptable: bool) -> Hint | None:
    """The patient's hint for a retake: the top reason's when the head is sure, else a generic one.
    An accepted photo gets none: the reasons head was trained on synthetic faults and flags some good
    photos (its probabilities stay in the result for an app that wants them)."""
    if acceptable:
        return None
    name = top_reason(reasons)
    return HINTS.get(name, GENERIC) if name is not None else GENERIC


def answer(rule, score: float, reasons: dict[str, float], detail=None) -> tuple[bool, str | None, "Hint | None"]:
    """(acceptable, the reason that sent it back or None, the patient's hint) of a model's outputs (and
    the 1:1 tile's ``DetailStats``, when measured) under a manifest's ``RetakeRule``: what
    ``QualityScorer`` returns, for any code that compares answers."""
    acceptable, trigger = rule.decide(score, reasons, detail)
    return acceptable, trigger, HINTS.get(trigger) if trigger else hint_for(reasons, acceptable)


def row_answers(outputs, rule, names: tuple[str, ...]) -> list[tuple[bool, str | None]]:
    """(acceptable, hint label or None) of each row ``[score, p(names[0]), ...]``: the patient-visible answer,
    for benchmarks that compare two files' answers."""
    out = []
    for row in outputs:
        acceptable, _, hint = answer(rule, float(row[0]), dict(zip(names, (float(p) for p in row[1:]))))
        out.append((acceptable, hint.label if hint else None))
    return out
