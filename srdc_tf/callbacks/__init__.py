"""Keras callbacks that carry SRDC's per-epoch state and schedules."""

from srdc_tf.callbacks.batch_norm import BatchNormRecalibration
from srdc_tf.callbacks.epoch_state import EpochStateCallback
from srdc_tf.callbacks.schedules import dao_learning_rate_scheduler
