"""Trains one step of an SRDCModel whose backbone has an unsynchronised
BatchNorm on a MirroredStrategy over 2 logical CPUs, the two replicas
seeing different data, and prints each replica's copy of the moving means
of the backbone's and of fc1's BatchNorm as JSON. Run as a script: the CPU
must be split before TensorFlow starts."""

import json
import sys

import keras
import numpy as np
import tensorflow as tf

from srdc_tf import distribute
from srdc_tf.models import SRDCModel


def main():
  distribute.split_cpu(2)
  strategy = distribute.create_strategy("mirrored", num_cpu_devices=2)
  with strategy.scope():
    inputs = keras.Input((2,))
    norm = keras.layers.BatchNormalization(momentum=0.0, name="norm")
    backbone = keras.Model(inputs, norm(inputs), name="backbone")
    model = SRDCModel(backbone, num_classes=2, input_shape=(2,),
                      num_source_examples=4, num_target_examples=4,
                      bottleneck_dim=3, weight_decay=0.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
  # Replica 0 gets the first two rows (mean 0), replica 1 the last two (10).
  images = np.array([[0, 0], [0, 0], [10, 10], [10, 10]], np.float32)
  batch = {"source_image": images, "source_label": np.array([0, 0, 1, 1]),
           "source_index": np.arange(4), "target_image": images,
           "target_index": np.arange(4)}
  model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, steps_per_epoch=1,
            verbose=0)
  copies = lambda variable: [v.numpy().tolist()  # pylint: disable=g-long-lambda
                             for v in variable.value.values]
  json.dump({"backbone": copies(norm.moving_mean),
             "fc1": copies(model.fc1_norm.moving_mean)}, sys.stdout)


if __name__ == "__main__":
  main()
