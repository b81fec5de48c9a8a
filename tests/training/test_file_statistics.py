"""Heads fitted on the statistics the phone file computes (``train --statistics-from``): the tensor read is the
one the file's heads read, the trunk's identity ignores what is not the trunk, and export refuses a file
whose trunk is not the one the heads were fitted on."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from diqa_edge.errors import DiqaError
from diqa_edge.export.formats import ExportError
from diqa_edge.models.file_trunk import file_features_key, trunk_digest
from diqa_edge.sdk import QualityScorer
from diqa_edge.sdk.decode import decode_image
from diqa_edge.sdk.tflite_metadata import embed_tflite_metadata
from diqa_edge.training.feature_cache import FeatureCache
from diqa_edge.training.file_statistics import file_statistics

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "diqa_edge" / "models" / "default.tflite"
RUN = ROOT / "diqa_edge" / "models" / "run"
SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))[:3]
N_FEATURES = 1568


@pytest.fixture(scope="module")
def trained():
    from diqa_edge.models.load import load_trained

    return load_trained(RUN)


def test_the_statistics_read_are_what_the_files_heads_read(tmp_path, trained):
    """The bundled run's heads applied to the statistics read from the bundled file give the file's own
    answer: the tensor found is the one its heads read (a wrong tensor of the same width would not)."""
    stats, cache = file_statistics(SAMPLES, BUNDLED, trained.contract, N_FEATURES, root=tmp_path, progress=False)
    assert stats.shape == (len(SAMPLES), N_FEATURES) and cache.computed == len(SAMPLES)
    scorer = QualityScorer(BUNDLED, threads=1)
    for path, row in zip(SAMPLES, stats):
        from_file = scorer.runtime.outputs(scorer.model_input(decode_image(path, scorer.contract)))
        from_heads = trained.model.outputs_of_features(row[None].astype(np.float64))[0]
        # the cache keeps rows in fp16 (as the float trunk's): a score within 0.02, reasons within 0.01
        assert abs(from_heads[0] - from_file[0]) < 0.02
        np.testing.assert_allclose(from_heads[1:], from_file[1:], atol=0.01)
    again, cache2 = file_statistics(SAMPLES, BUNDLED, trained.contract, N_FEATURES, root=tmp_path, progress=False)
    assert cache2.computed == 0 and np.array_equal(again, stats)       # read back, not computed again


def test_the_trunk_digest_ignores_the_manifest_but_not_the_trunk(tmp_path):
    data = BUNDLED.read_bytes()
    other_manifest = tmp_path / "relabelled.tflite"
    other_manifest.write_bytes(embed_tflite_metadata(data, '{"manifest_version": 2}'))
    assert trunk_digest(other_manifest, N_FEATURES) == trunk_digest(BUNDLED, N_FEATURES)

    # one trunk byte changed: another trunk; one byte of a head (the score head's 768 x 1,568 projection,
    # stored in int8) changed: the same trunk
    trunk_conv = with_one_byte_flipped(data, lambda t: len(t.shape) == 4, tmp_path / "changed.tflite")
    assert trunk_digest(trunk_conv, N_FEATURES) != trunk_digest(BUNDLED, N_FEATURES)
    new_head = with_one_byte_flipped(data, lambda t: list(t.shape) == [768, N_FEATURES], tmp_path / "head.tflite")
    assert trunk_digest(new_head, N_FEATURES) == trunk_digest(BUNDLED, N_FEATURES)


def with_one_byte_flipped(data: bytes, pick, path: Path) -> Path:
    """A copy of a .tflite with the first byte of the first int8 constant ``pick`` accepts flipped."""
    from ai_edge_litert import schema_py_generated as schema

    from diqa_edge.sdk.tflite_metadata import _packed

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    tensor = next(t for t in model.subgraphs[0].tensors if t.buffer and model.buffers[t.buffer].data is not None
                  and t.type == schema.TensorType.INT8 and pick(t))
    model.buffers[tensor.buffer].data = model.buffers[tensor.buffer].data.copy()
    model.buffers[tensor.buffer].data[0] ^= 1
    path.write_bytes(_packed(model, len(data)))
    return path


def test_a_file_without_the_statistics_is_refused(tmp_path):
    fixture = ROOT / "tests" / "fixtures" / "models" / "brightness.tflite"
    with pytest.raises(DiqaError, match="concatenation"):
        trunk_digest(fixture, N_FEATURES)
    with pytest.raises(DiqaError, match="tflite"):
        file_statistics(SAMPLES, ROOT / "tests" / "fixtures" / "models" / "brightness.onnx", None, N_FEATURES,
                        root=tmp_path, progress=False)
    assert not (tmp_path / "features").exists()        # refused before any cache folder is made


def test_statistics_from_wants_an_int8_trunk_file_of_the_same_pixels():
    from diqa_edge.contract import DEFAULT_CONTRACT
    from diqa_edge.training.feature_model import check_statistics_file

    contract = QualityScorer(BUNDLED).contract
    check_statistics_file(BUNDLED, contract, "efficientnet_lite0")        # the bundled file: accepted
    with pytest.raises(DiqaError, match="int8-trunk export of a efficientnet_lite2"):
        check_statistics_file(BUNDLED, contract, "efficientnet_lite2")
    with pytest.raises(DiqaError, match="preprocessing differs"):
        check_statistics_file(BUNDLED, DEFAULT_CONTRACT.replace(input_size=384), "efficientnet_lite0")
    with pytest.raises(DiqaError, match="a int8 file of"):
        check_statistics_file(ROOT / "tests" / "fixtures" / "models" / "brightness_int8.tflite", contract,
                              "efficientnet_lite0")
    with pytest.raises(DiqaError, match="no such file"):
        check_statistics_file(ROOT / "nothing.tflite", contract, "efficientnet_lite0")


def test_a_card_in_the_repository_names_its_file_from_any_folder(tmp_path, monkeypatch):
    from diqa_edge.training.feature_model import FeatureModelConfig

    monkeypatch.chdir(tmp_path)
    config = FeatureModelConfig(dataset_dirs={}, statistics_from="diqa_edge/models/default.tflite")
    assert config.statistics_file() == BUNDLED
    with pytest.raises(DiqaError, match="--tune changes the trunk"):
        FeatureModelConfig(dataset_dirs={}, statistics_from="x.tflite", tune="block5")
    with pytest.raises(DiqaError, match="unknown rule margin"):
        FeatureModelConfig(dataset_dirs={}, rule_margin="pooled-ish")


def test_export_refuses_a_file_whose_trunk_is_not_the_fitted_one(trained):
    from diqa_edge.export.tflite_target import check_fitted_trunk

    key = file_features_key(BUNDLED, N_FEATURES)
    fitted = SimpleNamespace(card={"features_key": key, "config": {"statistics_from": "x.tflite"}},
                             model=trained.model)
    check_fitted_trunk(fitted, BUNDLED)                                   # the same trunk: no error
    other = SimpleNamespace(card={"features_key": "tflite-trunk-0123456789abcdef",
                                  "config": {"statistics_from": "x.tflite"}}, model=trained.model)
    with pytest.raises(ExportError, match="0123456789abcdef"):
        check_fitted_trunk(other, BUNDLED)
    float_run = SimpleNamespace(card={"features_key": "e8e35a009e46a0bb", "config": {}}, model=trained.model)
    check_fitted_trunk(float_run, BUNDLED)                               # fitted on the float trunk: not checked


def test_a_cache_row_is_keyed_by_the_trunk(tmp_path, trained):
    file_statistics(SAMPLES[:1], BUNDLED, trained.contract, N_FEATURES, root=tmp_path, progress=False)
    folders = [p.name for p in (tmp_path / "features").iterdir()]
    assert folders == [file_features_key(BUNDLED, N_FEATURES)]
    assert len(FeatureCache(tmp_path / "features" / folders[0])) == 1


def test_the_shipped_heads_were_fitted_on_the_bundled_files_trunk():
    """The bundled run's heads read the statistics of the bundled file's own int8 trunk (its card's features
    key names that trunk); a rebuild that quantised another trunk would be refused by the export."""
    import json

    card = json.loads((RUN / "card.json").read_text())
    assert card["config"]["statistics_from"] == "diqa_edge/models/default.tflite"
    assert card["config"]["rule_margin"] == "per-domain"
    assert card["features_key"] == file_features_key(BUNDLED, N_FEATURES)
