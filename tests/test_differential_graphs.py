"""Differential tests (see tests/support/differential.py): random object graphs with shared and
recursive references (differential.random_graph)."""

import random

import pytest

from differential import PROTOCOLS, assert_same, random_graph, ref


@pytest.mark.parametrize("proto", PROTOCOLS)
@pytest.mark.parametrize("seed", range(40))
def test_random_graphs(seed, proto):
    rng = random.Random(seed * 7919 + proto)
    obj = random_graph(rng)
    data = assert_same(obj, proto)
    if data is not None:
        ref.loads(data)
