"""Domains (labelled or unlabelled image sets) and their tf.data pipelines."""

from srdc_tf.data.domain import Domain
from srdc_tf.data.pipeline import eval_dataset
from srdc_tf.data.pipeline import train_dataset
from srdc_tf.data.transforms import ImageTransform
