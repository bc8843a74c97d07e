"""Backbones and the SRDC model."""

from srdc_tf.models.backbones import BACKBONES
from srdc_tf.models.backbones import build_backbone
from srdc_tf.models.preprocessing import ImagePreprocessing
from srdc_tf.models.srdc_model import SRDCModel
