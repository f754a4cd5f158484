"""The checkpoints in checkpoints/ keep the promises of their model cards.

The shipped model (checkpoints/hnet_iterative/MODEL_CARD.md) claims, on 300 seeded pairs
from the held-out embedded photos (``evaluate --pairs 300 --seed 0``): the network alone
at most NETWORK_CLAIM px, and network + ECC at most REFINED_CLAIM px, with at most
FALLBACK_CLAIM of its pairs falling back to the network. This test runs that evaluation
offline and holds the pipeline to it. The earlier compact regression checkpoint
(checkpoints/hnet_compact) keeps its own card's claim against the identity.
"""

import json

import pytest

from hnet_keras.nets.checkpoint import SHIPPED_CHECKPOINT, load_checkpoint, load_pretrained
from hnet_keras.scoring.evaluation import evaluate, load_test_set

NETWORK_CLAIM = 3.5  # the card: measured 3.07 px (identity 25.02, SIFT + RANSAC 10.05)
REFINED_CLAIM = 1.2  # the card: measured 0.95 px, median 0.11
FALLBACK_CLAIM = 0.08  # the card: measured 5.7 %
COMPACT = SHIPPED_CHECKPOINT.parents[1] / "hnet_compact" / "hnet_compact.weights.h5"


def test_shipped_weights_are_small_and_described():
    assert SHIPPED_CHECKPOINT.name == "hnet_iterative.weights.h5" and SHIPPED_CHECKPOINT.is_file()
    assert SHIPPED_CHECKPOINT.stat().st_size <= 16 * 2**20
    description = json.loads(SHIPPED_CHECKPOINT.with_name("hnet_iterative.json").read_text())
    assert description["kind"] == "iterative" and description["rho"] == 16
    assert description["training"]["steps"] == 10_000


@pytest.mark.slow
def test_shipped_pipeline_keeps_its_cards_claims():
    model, rho = load_pretrained()
    assert model.input_shape == (None, 64, 64, 2) and rho == 16
    test_set = load_test_set(protocol="train", seed=0, count=300)
    result = evaluate(test_set, methods=["identity", "network", "network+ecc"], model=model, network_rho=rho,
                      progress=False)
    summary = result.summary()
    assert 23 < summary["identity"]["mace"] < 27  # rho 32: the expected corner length is 24.9 px
    assert summary["network"]["mace"] <= NETWORK_CLAIM, summary["network"]
    assert summary["network+ecc"]["mace"] <= REFINED_CLAIM, summary["network+ecc"]
    assert summary["network+ecc"]["median"] < 0.2
    assert summary["network+ecc"]["failure_rate"] <= FALLBACK_CLAIM


def test_the_compact_regression_checkpoint_still_beats_identity_by_its_margin():
    model, rho = load_checkpoint(COMPACT)
    result = evaluate(load_test_set(protocol="train", seed=0, count=300), methods=["identity", "network"],
                      model=model, network_rho=rho, progress=False)
    summary = result.summary()
    assert summary["network"]["mace"] <= 0.40 * summary["identity"]["mace"]  # its card: 0.378
