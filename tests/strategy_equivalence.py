"""Trains the same model for a few steps on 1 replica and on a
MirroredStrategy over 2 logical CPUs, and prints the largest weight
difference as JSON. Run as a script: the CPU must be split before
TensorFlow starts, which a pytest process may already have done."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from srdc_tf import distribute
from srdc_tf.models import build_backbone
from srdc_tf.models import SRDCModel


def batches(steps, batch):
  rng = np.random.default_rng(0)
  return [{"source_image": rng.uniform(0, 255, (batch, 16, 16, 3)).astype("float32"),
           "source_label": rng.integers(0, 3, batch).astype("int32"),
           "source_index": rng.integers(0, 40, batch).astype("int32"),
           "target_image": rng.uniform(0, 255, (batch, 16, 16, 3)).astype("float32"),
           "target_index": rng.integers(0, 40, batch).astype("int32")}
          for _ in range(steps)]


def train(strategy, data, initial):
  with strategy.scope():
    model = SRDCModel(build_backbone("lenet", (16, 16, 3)), num_classes=3,
                      input_shape=(16, 16, 3), num_source_examples=40,
                      num_target_examples=40, bottleneck_dim=8,
                      backbone_lr_multiplier=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  jit_compile=False)
  model.set_weights(initial)
  model.penalty.assign(0.7)
  model.q_mix.assign(1.0)
  dataset = tf.data.Dataset.from_tensor_slices(
      {k: np.stack([b[k] for b in data]) for k in data[0]})
  model.fit(dataset, epochs=1, steps_per_epoch=len(data), verbose=0)
  return model.get_weights()


def main():
  distribute.split_cpu(2)
  keras.utils.set_random_seed(0)
  data = batches(steps=4, batch=8)
  with tf.device("/cpu:0"):
    template = SRDCModel(build_backbone("lenet", (16, 16, 3)), num_classes=3,
                         input_shape=(16, 16, 3), num_source_examples=40,
                         num_target_examples=40, bottleneck_dim=8)
  rng = np.random.default_rng(1)
  initial = [w if w.dtype == np.int32 else
             (w + rng.normal(0, 0.1, w.shape).astype(w.dtype))
             for w in template.get_weights()]
  single = train(tf.distribute.OneDeviceStrategy("/cpu:0"), data, initial)
  mirrored_strategy = distribute.create_strategy("mirrored", num_cpu_devices=2)
  mirrored = train(mirrored_strategy, data, initial)
  diffs = [float(np.max(np.abs(a.astype(np.float64) - b)))
           for a, b in zip(single, mirrored) if a.size]
  moved = max(float(np.max(np.abs(a.astype(np.float64) - b)))
              for a, b in zip(single, initial) if a.size)
  json.dump({"max_diff": max(diffs), "moved": moved,
             "replicas": mirrored_strategy.num_replicas_in_sync}, sys.stdout)


if __name__ == "__main__":
  main()
