"""The frozen-backbone feature model: its features, the cache that keeps them, the folded linear layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SAMPLES
from diqa_edge.sdk.preprocess import preprocess
from diqa_edge.training.feature_cache import pooled_features
from diqa_edge.training.feature_model import LinearHeads
from diqa_edge.models.pooled_stats import build_pooled_stats, features_key, mean_and_std, stage_names

SIZE = 64   # small input: the test is about bookkeeping and algebra, not accuracy


@pytest.fixture(scope="module")
def built():
    return build_pooled_stats("efficientnet_lite0", "all", ("blur", "dark"), input_size=SIZE)


@pytest.fixture(scope="module")
def photos():
    return sorted(SAMPLES.glob("*.jpg"))[:4]


def test_features_are_mean_and_std_of_every_stage(built):
    assert built.model.trunk.num_features == 2 * (16 + 24 + 40 + 80 + 112 + 192 + 320 + 1280) == 4128
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    out = mean_and_std(x)
    assert torch.allclose(out[:, :3], x.mean(dim=(2, 3)))
    assert torch.allclose(out[:, 3:], x.std(dim=(2, 3), unbiased=False), atol=1e-4)
    late = build_pooled_stats("efficientnet_lite0", "block5,head", input_size=SIZE).model.trunk
    assert late.num_features == 2 * (192 + 1280)
    with pytest.raises(ValueError, match="unknown stage"):
        stage_names("block9")


def test_second_run_reads_the_cache_and_a_changed_contract_or_backbone_does_not(built, photos, tmp_path):
    trunk, contract = built.model.trunk, built.contract
    key = features_key("efficientnet_lite0", "all", contract, built.weights)
    first, cache = pooled_features(photos, trunk, contract, key, root=tmp_path, progress=False)
    assert cache.computed == len(photos) and first.shape == (len(photos), 4128)
    again, cache = pooled_features(photos, trunk, contract, key, root=tmp_path, progress=False)
    assert cache.computed == 0                               # counted, not timed: nothing recomputed
    np.testing.assert_array_equal(first, again)
    # the cached features are the trunk's own (fp16 storage: relative error ~1e-3)
    with torch.no_grad():
        direct = trunk(torch.from_numpy(preprocess(photos[0], contract, layout="NCHW"))).numpy()[0]
    np.testing.assert_allclose(first[0], direct, rtol=2e-3, atol=2e-3)

    wider = contract.replace(input_size=SIZE + 8)
    assert features_key("efficientnet_lite0", "all", wider, built.weights) != key
    assert features_key("efficientnet_lite1", "all", contract, built.weights) != key
    assert features_key("efficientnet_lite0", "block6,head", contract, built.weights) != key
    wider_built = build_pooled_stats("efficientnet_lite0", "all", input_size=SIZE + 8)
    wider_key = features_key("efficientnet_lite0", "all", wider_built.contract, wider_built.weights)
    _, cache = pooled_features(photos[:2], wider_built.model.trunk, wider_built.contract, wider_key, root=tmp_path,
                               progress=False)
    assert cache.computed == 2


def test_standardisation_folds_into_the_exported_linear_layer(built, photos):
    rng = np.random.default_rng(0)
    f = built.model.trunk.num_features
    heads = LinearHeads(mean=rng.normal(size=f), scale=rng.uniform(0.5, 2, size=f),
                        weight=rng.normal(scale=0.01, size=(3, f)), bias=np.array([5.0, -1.0, 0.5]), alpha=1.0)
    built.model.set_linear(heads.weight, heads.bias, heads.mean, heads.scale)
    x = torch.from_numpy(np.concatenate([preprocess(p, built.contract, layout="NCHW") for p in photos[:2]]))
    with torch.no_grad():
        exported = built.model(x).numpy()
        expected = heads.predict(built.model.trunk(x).numpy().astype(np.float64))
    assert exported.shape == (2, 3)
    np.testing.assert_allclose(exported, expected, rtol=1e-4, atol=1e-4)
    assert ((exported[:, 1:] > 0) & (exported[:, 1:] < 1)).all()     # reasons leave as probabilities


def test_kernel_score_computes_what_the_fitted_svr_predicts():
    """The SVR score head as tensor arithmetic (what exports) equals scikit-learn's own prediction."""
    from sklearn.svm import SVR

    from diqa_edge.models.pooled_stats import KernelScore

    rng = np.random.default_rng(0)
    f = rng.normal(3.0, 2.0, size=(300, 40))              # raw, unstandardised features
    y = np.sin(f[:, 0]) + 0.1 * f[:, 1] ** 2 + rng.normal(0, 0.05, 300)
    mean, scale = f.mean(0), f.std(0)
    svr = SVR(C=2.0, gamma=0.02, epsilon=0.1).fit((f - mean) / scale, y)
    head = KernelScore(len(svr.support_), 40)
    head.set_fit(mean, scale, svr.support_vectors_, svr.dual_coef_.ravel(), svr.intercept_[0], svr.gamma)
    test = rng.normal(3.0, 2.0, size=(50, 40))
    got = head(torch.as_tensor(test, dtype=torch.float32)).numpy().ravel()
    # exactly the SVR's formula on the centres as stored (rounded to fp16, as the phone file holds them)
    centres = svr.support_vectors_.astype(np.float16).astype(np.float64)
    u = (test - mean) / scale
    d2 = ((u[:, None, :] - centres[None]) ** 2).sum(-1)
    expected = np.exp(-svr.gamma * d2) @ svr.dual_coef_.ravel() + svr.intercept_[0]
    assert np.abs(got - expected).max() < 1e-4
    # and what the rounding costs against scikit-learn's own prediction: measured 0.0011 here, 0.0006 on
    # the shipped model's held-out features
    assert np.abs(got - svr.predict(u)).max() < 5e-3


def _kernel(n_centres=60, n_features=24, seed=0):
    import numpy as np
    import torch

    from diqa_edge.models.pooled_stats import KernelScore

    rng = np.random.default_rng(seed)
    k = KernelScore(n_centres, n_features)
    k.set_fit(rng.normal(size=n_features), rng.uniform(0.5, 2, n_features),
              rng.normal(size=(n_centres, n_features)), rng.uniform(-2, 2, n_centres), 5.0, 0.02)
    return k, torch.from_numpy(rng.normal(size=(7, n_features)).astype(np.float32))


def _by_hand(k, f, rank):
    """The reduced score computed here from the SVD, with the basis (per column) and the coordinates
    (per centre) on the int8 grid, |c|^2 of the full centres."""
    import numpy as np

    from diqa_edge.models.pooled_stats import on_int8_grid

    c = k.centres.double().numpy()
    v = on_int8_grid(np.linalg.svd(c, full_matrices=False)[2][:rank].astype(np.float32)).T.astype(np.float64)
    coords = on_int8_grid((c @ v).astype(np.float32)).astype(np.float64)
    u = (f.double().numpy() - k.mean.double().numpy()) * k.inv_scale.double().numpy()
    d2 = (u * u).sum(1, keepdims=True) - 2 * (u @ v) @ coords.T + (c * c).sum(1)
    return np.exp(-0.02 * np.maximum(d2, 0)) @ k.dual.double().numpy() + 5.0


def test_a_reduced_kernel_at_full_rank_is_the_kernel_up_to_int8_storage():
    import numpy as np
    import torch

    k, f = _kernel()
    with torch.no_grad():
        full, same = k(f).numpy(), k.reduced(24)(f).numpy()
    np.testing.assert_allclose(same, _by_hand(k, f, 24), atol=1e-4)
    assert np.abs(full - same).max() < 0.05        # int8 storage of unit-size numbers: a small change


def test_a_reduced_kernel_approximates_only_the_cross_term():
    """At rank r the score is b + sum a_i exp(-g(|u|^2 - 2 (u V)(c_i V) + |c_i|^2)), |c|^2 of the full centres:
    computed here by hand from the SVD and compared with the module."""
    import numpy as np
    import torch

    k, f = _kernel()
    reduced = k.reduced(5)
    with torch.no_grad():
        got = reduced(f).double().numpy()
        full = k(f).double().numpy()
    np.testing.assert_allclose(got, _by_hand(k, f, 5), atol=1e-4)
    assert np.abs(got - full).max() > 1e-3          # rank 5 of 24 is an approximation, not the kernel
    assert reduced.centres.shape == (60, 5) and reduced.basis.shape == (24, 5)
