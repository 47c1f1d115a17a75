"""The synthetic pages the offline fixtures are made of: seeded and deterministic, hard negatives that share a
page's layout but not its topic, and the fixtures command refusing bad sizes (the built fixtures loading as hub
models and datasets do: tests/e2e/test_fixtures.py)."""

from __future__ import annotations

import pytest

from vdr_exp.fixtures import synthetic_dataset
from vdr_exp.fixtures.synthetic_dataset import SyntheticSpec


def test_generation_is_seeded_and_deterministic():
    spec = SyntheticSpec(train_rows=3, eval_rows=2, extra_rows=0, width=120, height=170, seed=7)
    first, second = synthetic_dataset.generate_rows(spec), synthetic_dataset.generate_rows(spec)
    assert first == second
    other = synthetic_dataset.generate_rows(SyntheticSpec(3, 2, 0, 120, 170, seed=8))
    assert other["query"] != first["query"]


def test_hard_negatives_share_layout_but_not_topic():
    import random

    from vdr_exp.fixtures import pages

    rng = random.Random(0)
    positive = pages.random_spec(rng)
    negative = pages.negative_of(positive, rng, exclude={positive.topic})
    assert (negative.kind, negative.layout, negative.font) == (positive.kind, positive.layout, positive.font)
    assert negative.topic != positive.topic
    query = pages.query_for(positive, rng)
    assert positive.topic in query and negative.topic not in query


def test_cli_rejects_bad_sizes(capsys):
    from vdr_exp.fixtures.__main__ import main

    with pytest.raises(SystemExit) as exc:
        main(["--train-rows", "0"])
    assert exc.value.code == 2
    assert "--train-rows must be at least 1" in capsys.readouterr().err
