import jax
import pytest


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def check_env_clean():
    """`check_env_clean(env)`: gymnasium's check_env passes and warns about nothing."""
    import warnings

    from gymnasium.utils.env_checker import check_env

    def check(env):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env)
        assert [str(w.message) for w in caught] == []

    return check
