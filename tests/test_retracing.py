"""No retracing: a run traces its training step once, however many epochs
it has, and its inference passes a bounded number of times.

Python code in `train_step` runs only while TensorFlow traces it, so a
counter incremented there counts traces.
"""

import collections

import pytest

from srdc_tf import run_data
from srdc_tf import run_settings
from srdc_tf import runner
from srdc_tf.models import srdc_model

EPOCHS = 3


@pytest.fixture(name="traces")
def _traces(monkeypatch):
  """Counts the traces of `train_step` and `test_step` (with the batch
  shapes seen) and keeps the model that was trained."""
  traces = collections.defaultdict(list)
  for step in ("train_step", "test_step"):
    original = getattr(srdc_model.SRDCModel, step)

    def counting(self, data, step=step, original=original):
      images = data["source_image"] if step == "train_step" else data[0]
      traces[step].append(tuple(images.shape))
      traces["model"] = [self]
      return original(self, data)

    monkeypatch.setattr(srdc_model.SRDCModel, step, counting)
  return traces


def _run(tmp_path, epochs, **changes):
  settings = run_settings.RunSettings(**{
      "source": "synthetic:source", "target": "synthetic:target",
      "model_dir": str(tmp_path / f"run{epochs}"),
      # 6 classes x 25 = 150 examples: evaluation batches of 128 and 22.
      "synthetic_examples_per_class": 25, "image_size": 16,
      "bottleneck_dim": 8, "batch_size": 8, "kmeans_iterations": 2,
      "epochs": epochs, "steps_per_epoch": 3, "verbose": 0,
      "checkpoint_every_steps": 2, **changes})
  return runner.run(settings, run_data.load_data(settings),
                    runner.distribute.create_strategy("default"))


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_training_step_traces_once_per_run(tmp_path, traces, precision):
  _run(tmp_path, EPOCHS, precision=precision)
  # One trace, for the one input signature of the training stream (its
  # batches are all full: drop_remainder).
  assert traces["train_step"] == [(8, 16, 16, 3)]
  # Validation every epoch, in batches of 128 and 22: one trace, for the
  # evaluation stream's signature (its batch dimension is None).
  assert traces["test_step"] == [(None, 16, 16, 3)]
  model = traces["model"][0]
  # The per-epoch inference pass (source and target, every epoch, and the
  # per-class accuracy at the end): its function, made once per model,
  # traced at most twice (a full batch, then a relaxed shape for the last
  # partial one).
  embed = model._srdc_embed_fn  # pylint: disable=protected-access
  assert 1 <= embed.experimental_get_tracing_count() <= 2


def test_traces_do_not_grow_with_epochs(tmp_path, traces):
  _run(tmp_path, 1)
  one_epoch = {step: len(traces[step]) for step in ("train_step",
                                                    "test_step")}
  embed_one = traces["model"][0]._srdc_embed_fn  # pylint: disable=protected-access
  _run(tmp_path, EPOCHS + 1)
  # The second run is a new model: its own traces come on top.
  more = {step: len(traces[step]) - one_epoch[step]
          for step in one_epoch}
  assert more == one_epoch
  embed_more = traces["model"][0]._srdc_embed_fn  # pylint: disable=protected-access
  assert (embed_more.experimental_get_tracing_count()
          == embed_one.experimental_get_tracing_count())
