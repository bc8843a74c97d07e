"""Tests of srdc_tf.data.pipeline: epoch length and epoch structure."""

import re

import numpy as np
import pytest

from srdc_tf.data import domain as domain_lib
from srdc_tf.data import pipeline


def _features(n, name):
  return domain_lib.Domain(
      name=name, class_names=("a", "b"),
      labels=np.arange(n, dtype=np.int32) % 2,
      images=np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 3),
                                                               np.float32))


@pytest.mark.parametrize("structure, source, target, batch, steps", [
    ("stream", 10, 7, 4, 3),   # ceil(10 / 4)
    ("passes", 10, 7, 4, 2),   # floor(10 / 4): partial batches dropped
    ("stream", 5, 13, 4, 4),
    ("passes", 5, 13, 4, 3),
    ("passes", 8, 8, 4, 2),
])
def test_steps_per_epoch(structure, source, target, batch, steps):
  assert pipeline.steps_per_epoch(_features(source, "s"), _features(target, "t"),
                                  batch, structure) == steps


def _indices(structure, n, batch, batches, start_step=0):
  data = pipeline.train_dataset(_features(n, "s"), _features(n + 3, "t"),
                                batch, None, seed=5, start_step=start_step,
                                epoch_structure=structure)
  return np.stack([b["source_index"] for b in
                   data.take(batches).as_numpy_iterator()])


def test_passes_never_mix_two_passes_in_a_batch():
  # 10 examples, batches of 4: each pass is 2 whole batches of 8 distinct
  # examples, the other 2 dropped, and a new shuffle starts every 2 batches.
  indices = _indices("passes", 10, 4, 8)
  for p in range(4):
    one_pass = indices[2 * p:2 * p + 2].ravel()
    assert len(set(one_pass.tolist())) == 8
  # The stream instead covers all 10 examples in 10 consecutive draws.
  stream = _indices("stream", 10, 4, 5).ravel()
  assert set(stream[:10].tolist()) == set(range(10))


@pytest.mark.parametrize("structure", pipeline.EPOCH_STRUCTURES)
def test_resumed_stream_equals_the_whole_one(structure):
  whole = _indices(structure, 10, 4, 7)
  np.testing.assert_array_equal(_indices(structure, 10, 4, 3, start_step=4),
                                whole[4:])


def test_passes_needs_a_whole_batch_per_domain():
  with pytest.raises(ValueError, match="source domain has 3 examples"):
    pipeline.steps_per_epoch(_features(3, "s"), _features(9, "t"), 4,
                             "passes")
  with pytest.raises(ValueError, match="source domain has 3 examples"):
    pipeline.train_dataset(_features(3, "s"), _features(9, "t"), 4, None,
                           epoch_structure="passes")


def test_rejects_unknown_epoch_structure():
  with pytest.raises(ValueError, match=re.escape("'epochs'")):
    pipeline.steps_per_epoch(_features(4, "s"), _features(4, "t"), 2,
                             "epochs")
