"""Core ML through coremltools: an ML Program ``.mlpackage`` with an image input.

How the contract's normalisation gets in, exactly: Core ML's ImageType applies
``y = scale * pixel + bias[c]`` with ONE scale for all channels, but our
normalisation ``x_c = (pixel / 255 - mean_c) / std_c`` has a different std per
channel. We split it: ImageType takes ``scale = 1/255`` and ``bias_c =
-mean_c`` (so ``y_c = pixel/255 - mean_c``), and the remaining ``1 / std_c`` is
folded into the first convolution's weights (input channel c of every
filter divided by std_c). Convolution is linear and its zero padding stays
zero under the scaling, so this is exact, and no extra op is added.

Precisions: fp32 and fp16 compute, and 8-bit linear weights
(``coremltools.optimize.coreml.linear_quantize_weights``, symmetric int8,
fp16 compute). Minimum deployment target iOS 16 / macOS 13 (ML Program with
constexpr dequantisation). Prediction needs macOS; on Linux the package is
built and its spec validated.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

from ..sdk.manifest import MANIFEST_KEY, ModelManifest, write_sidecar
from ..sdk.decision import RetakeRule
from .formats import DEFAULT_RULE, Artefact, ExportError, ExportJob, stage

MIN_TARGET = "iOS16"


def fold_std_into_stem(model, std) -> object:
    """A copy of the model whose first conv divides input channel c by std_c."""
    import torch

    folded = copy.deepcopy(model).eval()
    first = next(m for m in folded.modules() if isinstance(m, torch.nn.Conv2d))
    if first.in_channels != 3:
        raise ExportError(f"coreml: first convolution has {first.in_channels} input channels, expected 3")
    with torch.no_grad():
        first.weight.div_(torch.tensor(std, dtype=first.weight.dtype).view(1, 3, 1, 1))
    return folded


def image_input(contract, *, color_layout: str = "RGB", bias: list[float] | None = None):
    """The ImageType that applies ``pixel/255 - mean_c`` (the contract's std is folded into the stem).

    ``color_layout`` / ``bias`` exist so tests can build deliberately wrong packages and prove the
    reference executor catches them; an export never passes them."""
    import coremltools as ct

    size = contract.input_size
    return ct.ImageType(name="image", shape=(1, 3, size, size), scale=1.0 / 255.0,
                        bias=list(bias) if bias is not None else [-m for m in contract.mean],
                        color_layout=getattr(ct.colorlayout, color_layout))


def output_name(model) -> str:
    """"score" for a score-only model; with a reasons head the one output is [score, p(reason)...]."""
    return "score" if len(model.output_names) == 1 else "score_and_reasons"


@stage("coreml", "coremltools conversion", "coremltools")
def _convert(model, contract, precision: str, image=None):
    import coremltools as ct
    import torch

    size = contract.input_size
    traced = torch.jit.trace(fold_std_into_stem(model, contract.std), torch.zeros(1, 3, size, size))
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    ml = ct.convert(traced, inputs=[image or image_input(contract)], outputs=[ct.TensorType(name=output_name(model))],
                    convert_to="mlprogram", compute_precision=compute,
                    minimum_deployment_target=getattr(ct.target, MIN_TARGET))
    if precision == "int8":
        from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

        ml = linear_quantize_weights(ml, OptimizationConfig(
            global_config=OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")))
    return ml


def validate_spec(path: Path, contract) -> dict:
    """Read the saved package back (no Core ML framework needed) and check what the phone will get."""
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    inp = spec.description.input[0]
    if inp.type.WhichOneof("Type") != "imageType":
        raise ExportError(f"{path}: input is not an image")
    img = inp.type.imageType
    if (img.width, img.height) != (contract.input_size, contract.input_size):
        raise ExportError(f"{path}: image input {img.width}x{img.height}, contract says {contract.input_size}")
    meta = dict(spec.description.metadata.userDefined)
    if MANIFEST_KEY not in meta:
        raise ExportError(f"{path}: user metadata lacks {MANIFEST_KEY}")
    return {"spec_version": spec.specificationVersion, "input": f"image {img.width}x{img.height} RGB",
            "model_type": spec.WhichOneof("Type")}


def save_package(ml, trained, precision: str, out: Path, *, rule: RetakeRule = DEFAULT_RULE,
                 rule_evidence: dict | None = None) -> dict:
    """Write the package with its manifest (in the model's metadata and beside it), atomically."""
    contract = trained.contract
    manifest = ModelManifest(contract, rule, name=trained.name, format="coreml",
                             precision=precision, rule_evidence=rule_evidence or {},
                             outputs=tuple(trained.model.output_names),
                             extra={"image_input": {"scale": 1 / 255, "bias": [-m for m in contract.mean],
                                                    "std_folded_into_first_conv": list(contract.std)},
                                    "minimum_deployment_target": MIN_TARGET})
    ml.user_defined_metadata[MANIFEST_KEY] = manifest.to_json()
    ml.user_defined_metadata["score_range"] = f"{contract.score_min}-{contract.score_max}"
    ml.short_description = f"diqa-edge photo quality score ({trained.name}, {precision})"
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)) / out.name
    ml.save(str(tmp))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    shutil.rmtree(tmp.parent, ignore_errors=True)
    write_sidecar(out, manifest)
    notes = validate_spec(out, contract)
    notes["minimum_deployment_target"] = MIN_TARGET
    return notes


def export_coreml(trained, precisions: list[str], out_dir: Path, *, rule: RetakeRule = DEFAULT_RULE,
                  rule_evidence: dict | None = None) -> list[Artefact]:
    artefacts = []
    for precision in precisions:
        ml, seconds = _convert(trained.model, trained.contract, precision)
        out = out_dir / f"{trained.name}_coreml_{precision}.mlpackage"
        notes = save_package(ml, trained, precision, out, rule=rule, rule_evidence=rule_evidence)
        artefacts.append(Artefact("coreml", precision, out, seconds, notes))
    return artefacts


def export(trained, precisions: list[str], job: ExportJob) -> list[Artefact]:
    """The export table's entry: coremltools converts the PyTorch model itself (no ONNX)."""
    return export_coreml(trained, precisions, job.out_dir, **job.meta())
