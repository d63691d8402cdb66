"""IndexConfig.method is checked against the retrieval method registry."""

import pytest

from loop.config import resolve
from loop.errors import ConfigError
from loop.index import IndexConfig
from retrieval import method_names, register_method
from retrieval.methods import unregister


def test_default_and_builtin_methods():
    assert IndexConfig().method == "hybrid"
    for name in method_names():
        assert resolve(IndexConfig, {"method": name}).method == name


def test_unknown_method_names_the_known_ones():
    with pytest.raises(ConfigError) as err:
        resolve(IndexConfig, {"method": "splade"})
    msg = str(err.value)
    assert msg.startswith("[index] 'method'") and "unknown method 'splade'" in msg
    assert "known: bm25, dense, hybrid, bm25_chunk, dense_chunk, bm25_local" in msg


def test_a_registered_method_is_accepted():
    register_method("lexical_only", {"bm25": 1.0, "bm25_local": 1.0})
    try:
        assert resolve(IndexConfig, {"method": "lexical_only"}).method == "lexical_only"
    finally:
        unregister("lexical_only")
    with pytest.raises(ConfigError):
        resolve(IndexConfig, {"method": "lexical_only"})
