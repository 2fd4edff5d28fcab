"""The k-NN state-entropy estimator and bonus (entrolab.measures.state_entropy) against closed forms."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from entrolab.measures.state_entropy import RunningStd, knn_entropy, knn_intrinsic_reward, random_encoder

# stated tolerances (nats) at n = 2,000, k = 5, per dimension 1..5. Gaussians: the estimator is
# nearly unbiased; a uniform on a cube has a boundary bias that grows with the dimension (measured:
# at most +0.03, +0.04, +0.15, +0.31, +0.49 over 7 samples), which the uniform bound allows for.
GAUSSIAN_TOL = (0.05, 0.08, 0.1, 0.12, 0.15)
UNIFORM_TOL = (0.06, 0.08, 0.2, 0.35, 0.6)


@pytest.mark.parametrize("d", range(1, 6))
def test_gaussians_and_uniforms_in_1_to_5_dimensions(d):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.5 * np.eye(d)
    x = rng.multivariate_normal(np.zeros(d), cov, size=2000)
    exact = 0.5 * np.log((2 * np.pi * np.e) ** d * np.linalg.det(cov))
    assert float(knn_entropy(jnp.asarray(x), 5)) == pytest.approx(exact, abs=GAUSSIAN_TOL[d - 1])
    u = rng.uniform(0.0, 2.0, size=(2000, d))
    est = float(knn_entropy(jnp.asarray(u), 5))
    assert -0.05 < est - d * np.log(2.0) < UNIFORM_TOL[d - 1]


def test_the_bias_shrinks_with_n():
    rng = np.random.default_rng(0)

    def bias(n):
        return np.mean([float(knn_entropy(jnp.asarray(rng.uniform(0, 2, size=(n, 3))), 5)) - 3 * np.log(2)
                        for _ in range(5)])

    assert bias(2000) < bias(250)


def test_own_point_excluded_and_reward_and_errors():
    x = jnp.asarray([[0.0], [1.0], [3.0]])
    # k = 1: nearest *other* point (with the point itself counted every distance would be 0)
    np.testing.assert_allclose(knn_intrinsic_reward(x, 1), np.log1p([1.0, 1.0, 2.0]), rtol=1e-6)
    np.testing.assert_allclose(knn_intrinsic_reward(x, 2), np.log1p([3.0, 2.0, 3.0]), rtol=1e-6)
    with pytest.raises(ValueError, match="k must be an integer"):
        knn_entropy(x, 3)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        knn_entropy(jnp.zeros((2, 2, 2)), 1)


def test_running_std_matches_numpy_over_batches():
    rng = np.random.default_rng(2)
    batches = [rng.normal(3.0, 2.0, size=n) for n in (5, 17, 40)]
    stats = RunningStd.create()
    for b in batches:
        stats = stats.update(jnp.asarray(b))
    allv = np.concatenate(batches)
    assert float(stats.std) == pytest.approx(allv.std(ddof=1), rel=1e-4)
    np.testing.assert_allclose(stats.normalize(jnp.asarray([2.0])), [2.0 / allv.std(ddof=1)], rtol=1e-4)
    assert float(RunningStd.create().normalize(jnp.asarray(2.0))) == 2.0


def test_random_encoder_is_fixed_and_linear():
    import jax

    enc = random_encoder(jax.random.key(0), 10, 3)
    x = jnp.ones((4, 10))
    np.testing.assert_array_equal(enc(x), enc(x))
    np.testing.assert_allclose(enc(2 * x), 2 * enc(x), rtol=1e-6)
    assert enc(x).shape == (4, 3)
