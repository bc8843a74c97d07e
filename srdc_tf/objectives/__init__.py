"""The SRDC objective as pure functions (soft assignments, q, losses, ramps)."""

from srdc_tf.objectives.assignments import FEATURE_ASSIGNMENTS
from srdc_tf.objectives.assignments import feature_assignment_logits
from srdc_tf.objectives.auxiliary import auxiliary_distribution
from srdc_tf.objectives.auxiliary import mix_with_pseudo_labels
from srdc_tf.objectives.losses import clustering_loss
from srdc_tf.objectives.losses import confidence_mask
from srdc_tf.objectives.losses import diversity_loss
from srdc_tf.objectives.losses import weighted_source_loss
from srdc_tf.objectives.schedules import dao_learning_rate
from srdc_tf.objectives.schedules import penalty_ramp
