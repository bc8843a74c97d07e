"""Per-epoch clustering state of SRDC as pure functions."""

from srdc_tf.clustering.centroids import class_centroids
from srdc_tf.clustering.distances import nearest_centre
from srdc_tf.clustering.distances import squared_distances
from srdc_tf.clustering.epoch_state import EpochState
from srdc_tf.clustering.epoch_state import compute_epoch_state
from srdc_tf.clustering.epoch_state import compute_sharded_epoch_state
from srdc_tf.clustering.kmeans import kmeans
from srdc_tf.clustering.kmeans import sharded_kmeans
from srdc_tf.clustering.shards import Shard
from srdc_tf.clustering.shards import gather_rows
from srdc_tf.clustering.shards import local_sum
from srdc_tf.clustering.source_weights import source_weights
