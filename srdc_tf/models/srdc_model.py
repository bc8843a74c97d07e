"""The SRDC network and its training step."""

import keras
import tensorflow as tf

from srdc_tf import objectives

HEAD_INITS = ("glorot", "pytorch")

LOSS_TERMS = ("source_output_loss", "source_f_loss", "source_h_loss",
              "target_output_loss", "target_f_loss", "target_h_loss",
              "target_diversity_loss", "l2_loss")


def _global_batch_size(tensor):
  return tf.shape(tensor)[0] * tf.distribute.get_strategy().num_replicas_in_sync


def _sum_over_replicas(value):
  # Gradients flow through ReplicaContext.all_reduce (its gradient is an
  # all-reduce too), so q on N replicas equals q on the global batch.
  context = tf.distribute.get_replica_context()
  if context is None or context.num_replicas_in_sync == 1:
    return value
  return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _as_logs(values):
  """The step's logs, in the shape Keras can average over replicas.

  With more than one worker, Keras 3.15 averages each log value with
  `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar
  ("Invalid reduction dimension 0 for input with 0 dimensions"); a value
  of shape [1] comes out of it as the scalar mean over replicas.
  """
  extended = tf.distribute.get_strategy().extended
  if getattr(extended, "_in_multi_worker_mode", lambda: False)():
    return {name: tf.reshape(value, [1]) for name, value in values.items()}
  return values


@keras.saving.register_keras_serializable(package="srdc_tf")
class SRDCModel(keras.Model):
  """Backbone -> `f` -> fc1 (Dense, BatchNorm, ReLU) -> `h` -> fc2 logits.

  The model also owns SRDC's state: learnable cluster centres `mu_f` and
  `mu_h` (trained like weights), and non-trainable per-sample tables (the
  target k-means pseudo-labels and the source weights) plus the per-epoch
  scalars `penalty` (lambda) and `q_mix` (beta, 0 in the first epoch), which
  the `EpochStateCallback` assigns. Being weights, they are checkpointed,
  saved and mirrored under a distribution strategy.

  `train_step` takes a dict with `source_image`, `source_label`,
  `source_index`, `target_image` and `target_index`; `test_step` takes
  `(target_image, target_label)` and reports `target_accuracy`.

  Args:
    backbone: a `keras.Model` from images to `[batch, feature_dim]`, or None
      when the inputs are already backbone features (a frozen backbone's
      feature cache).
    num_classes: K.
    input_shape: shape of one input (an image, or a feature vector).
    num_source_examples: size of the source table.
    num_target_examples: size of the target table.
    bottleneck_dim: width of fc1 (`h`).
    alpha: Student-t degrees of freedom of the feature-level assignment.
    beta: weight of the auxiliary distribution against the k-means
      pseudo-labels, from the second epoch.
    detach_q: treat q as a constant (the paper's reading); the released code
      differentiates through q, the default.
    feature_clustering: cluster the target at `f` and `h` as well as at the
      output.
    source_regularization: the structural source terms at `f` and `h`.
    source_only: train on the source cross-entropy alone (the baseline).
    weight_decay: coupled L2 coefficient, added to the gradient as PyTorch
      SGD does (Keras' `weight_decay=` is decoupled and differs).
    backbone_lr_multiplier: learning-rate factor of the backbone and the
      centres (0.1 for a pretrained backbone, 1 from scratch).
    feature_assignment: "softmax" or "normalized_kernel", how `ptilde`
      is made from the Student-t kernel (see
      `objectives.feature_assignment_logits`).
    head_init: initialisation of fc1 and fc2: "glorot" (Keras' Glorot
      uniform kernels, zero biases) or "pytorch" (PyTorch's `nn.Linear`
      default, what the released code uses: kernels and biases uniform in
      +-1/sqrt(fan_in), about half Glorot's range here).
    diversity_weight: weight of `objectives.diversity_loss` on the global
      target batch's mean output prediction, ramped with lambda; 0 (the
      paper) leaves it out of the objective.
    diversity_floor: its `floor`, the balance below which it acts (1: the
      whole KL to uniform).
    source_label_smoothing: eps of the output-level source cross-entropy's
      label smoothing (beyond the paper, which is 0); the `f`- and `h`-level
      source terms keep hard labels.
    target_confidence_threshold: target samples whose largest output
      probability is below it are left out of the target clustering terms
      (all three levels) of a step (beyond the paper, which is 0: every
      sample); `objectives.confidence_mask`.
    backbone_frozen_epochs: the first epochs during which the backbone
      does not train (beyond the paper, which trains it from the first
      step; 0): its weights get no update and its BatchNorm layers run in
      inference mode while `backbone_trains` is 0, which
      `callbacks.schedules.BackboneRelease` sets per epoch.
    **kwargs: base model arguments.
  """

  def __init__(self, backbone, num_classes, input_shape, num_source_examples,
               num_target_examples, bottleneck_dim=512, alpha=1.0, beta=1.0,
               detach_q=False, feature_clustering=True,
               source_regularization=True, source_only=False,
               weight_decay=1e-4, backbone_lr_multiplier=0.1,
               head_init="glorot", feature_assignment="softmax",
               diversity_weight=0.0, diversity_floor=1.0,
               source_label_smoothing=0.0, target_confidence_threshold=0.0,
               backbone_frozen_epochs=0, **kwargs):
    super().__init__(**kwargs)
    if head_init not in HEAD_INITS:
      raise ValueError(
          f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
    for name, value in (("num_classes", num_classes),
                        ("num_source_examples", num_source_examples),
                        ("num_target_examples", num_target_examples),
                        ("bottleneck_dim", bottleneck_dim)):
      if int(value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if not 0.0 <= beta <= 1.0:
      raise ValueError(f"beta must be in [0, 1], got {beta!r}")
    if alpha <= 0:
      raise ValueError(f"alpha must be > 0, got {alpha!r}")
    if diversity_weight < 0:
      raise ValueError(
          f"diversity_weight must be >= 0, got {diversity_weight!r}")
    if not 0.0 <= diversity_floor <= 1.0:
      raise ValueError(
          f"diversity_floor must be in [0, 1], got {diversity_floor!r}")
    self.backbone = backbone
    self.num_classes = int(num_classes)
    self.input_shape_ = tuple(int(d) for d in input_shape)
    self.num_source_examples = int(num_source_examples)
    self.num_target_examples = int(num_target_examples)
    self.bottleneck_dim = int(bottleneck_dim)
    self.alpha = float(alpha)
    self.beta = float(beta)
    self.detach_q = bool(detach_q)
    self.feature_clustering = bool(feature_clustering)
    self.source_regularization = bool(source_regularization)
    self.source_only = bool(source_only)
    self.weight_decay = float(weight_decay)
    self.backbone_lr_multiplier = float(backbone_lr_multiplier)
    self.head_init = head_init
    if feature_assignment not in objectives.FEATURE_ASSIGNMENTS:
      raise ValueError(f"feature_assignment must be one of "
                       f"{objectives.FEATURE_ASSIGNMENTS}, got "
                       f"{feature_assignment!r}")
    self.feature_assignment = feature_assignment
    self.diversity_weight = float(diversity_weight)
    self.diversity_floor = float(diversity_floor)
    if not 0.0 <= source_label_smoothing < 1.0:
      raise ValueError(f"source_label_smoothing must be in [0, 1), got "
                       f"{source_label_smoothing!r}")
    self.source_label_smoothing = float(source_label_smoothing)
    if not 0.0 <= target_confidence_threshold < 1.0:
      raise ValueError(f"target_confidence_threshold must be in [0, 1), got "
                       f"{target_confidence_threshold!r}")
    self.target_confidence_threshold = float(target_confidence_threshold)
    if int(backbone_frozen_epochs) < 0:
      raise ValueError(f"backbone_frozen_epochs must be >= 0, got "
                       f"{backbone_frozen_epochs!r}")
    self.backbone_frozen_epochs = int(backbone_frozen_epochs)
    # PyTorch's nn.Linear kernel: uniform with limit sqrt(3 * scale / fan_in)
    # = 1 / sqrt(fan_in); its bias is set in `build`, once fan_in is known.
    kernel_init = ("glorot_uniform" if head_init == "glorot" else
                   keras.initializers.VarianceScaling(
                       1.0 / 3.0, mode="fan_in", distribution="uniform"))

    # The model's own dtype policy (saved in its config), so that a loaded
    # model computes like the trained one whatever the global policy.
    self.fc1 = keras.layers.Dense(self.bottleneck_dim,
                                  kernel_initializer=kernel_init,
                                  dtype=self.dtype_policy, name="fc1")
    # Synchronised so that replicas of a MirroredStrategy share statistics.
    self.fc1_norm = keras.layers.BatchNormalization(
        momentum=0.9, epsilon=1e-5, synchronized=True,
        dtype=self.dtype_policy, name="fc1_norm")
    # float32 logits under a mixed policy: softmax and the losses need them.
    self.fc2 = keras.layers.Dense(self.num_classes, dtype="float32",
                                  kernel_initializer=kernel_init, name="fc2")

    self.loss_trackers = {
        name: keras.metrics.Mean(name=name) for name in ("loss",) + LOSS_TERMS}
    self.source_accuracy = keras.metrics.SparseCategoricalAccuracy(
        name="source_accuracy")
    self.target_accuracy = keras.metrics.SparseCategoricalAccuracy(
        name="target_accuracy")
    self.build((None,) + self.input_shape_)

  def build(self, input_shape):
    if self.backbone is not None:
      self.backbone.build(input_shape)
      feature_dim = int(self.backbone.output.shape[-1])
    else:
      feature_dim = int(input_shape[-1])
    self.feature_dim = feature_dim
    self.fc1.build((None, feature_dim))
    self.fc1_norm.build((None, self.bottleneck_dim))
    self.fc2.build((None, self.bottleneck_dim))
    if self.head_init == "pytorch":
      for layer, fan_in in ((self.fc1, feature_dim),
                            (self.fc2, self.bottleneck_dim)):
        limit = fan_in ** -0.5
        layer.bias.assign(keras.initializers.RandomUniform(-limit, limit)(
            layer.bias.shape, dtype=layer.bias.dtype))
    # SRDC's state is float32 (int32) whatever the dtype policy, and is
    # never autocast to a mixed policy's compute dtype when read.
    self.centres_f = self.add_weight(
        shape=(self.num_classes, feature_dim), initializer="zeros",
        dtype="float32", autocast=False, name="centres_f")
    self.centres_h = self.add_weight(
        shape=(self.num_classes, self.bottleneck_dim), initializer="zeros",
        dtype="float32", autocast=False, name="centres_h")
    self.target_pseudo_labels = self.add_weight(
        shape=(self.num_target_examples,), initializer="zeros",
        dtype="int32", trainable=False, autocast=False,
        name="target_pseudo_labels")
    self.source_weights = self.add_weight(
        shape=(self.num_source_examples,), initializer="ones",
        dtype="float32", trainable=False, autocast=False,
        name="source_weights")
    self.penalty = self.add_weight(
        shape=(), initializer="zeros", dtype="float32", trainable=False,
        autocast=False, name="penalty")
    self.q_mix = self.add_weight(
        shape=(), initializer="zeros", dtype="float32", trainable=False,
        autocast=False, name="q_mix")
    if self.backbone_frozen_epochs:
      # 1 once the backbone trains. Only then, so that models saved
      # without the option load unchanged.
      self.backbone_trains = self.add_weight(
          shape=(), initializer="zeros", dtype="float32", trainable=False,
          autocast=False, name="backbone_trains")
    self.built = True

  # === Forward ===

  def embed(self, inputs, training=False):
    """Returns `(f, h, logits)` for a batch of inputs: `f` and `h` in the
    compute dtype, the logits in float32."""
    if self.backbone is None:
      f = inputs
    elif training and self.backbone_frozen_epochs:
      f = tf.cond(self.backbone_trains > 0.0,
                  lambda: self.backbone(inputs, training=True),
                  lambda: self.backbone(inputs, training=False))
    else:
      f = self.backbone(inputs, training=training)
    h = keras.activations.relu(
        self.fc1_norm(self.fc1(f), training=training))
    return f, h, self.fc2(h)

  def call(self, inputs, training=False):
    return self.embed(inputs, training=training)[2]

  # === Losses ===

  def _assignment_logits(self, features, centres):
    return objectives.feature_assignment_logits(
        features, centres, self.alpha, self.feature_assignment)

  def _target_clustering_loss(self, scores, pseudo_labels, global_batch,
                              mask=None):
    probs = tf.nn.softmax(tf.cast(scores, tf.float32))
    q = objectives.auxiliary_distribution(
        probs, _sum_over_replicas(tf.reduce_sum(probs, axis=0)),
        stop_gradient=self.detach_q)
    q = objectives.mix_with_pseudo_labels(q, pseudo_labels, self.q_mix)
    per_sample = objectives.clustering_loss(
        q, tf.nn.log_softmax(tf.cast(scores, tf.float32)))
    if mask is not None:
      per_sample *= mask
    return tf.nn.compute_average_loss(per_sample,
                                      global_batch_size=global_batch)

  def _target_diversity_loss(self, logits):
    probs = tf.nn.softmax(tf.cast(logits, tf.float32))
    mean_probs = _sum_over_replicas(tf.reduce_sum(probs, axis=0)) / tf.cast(
        _global_batch_size(logits), tf.float32)
    # Every replica computes the global term; its share is 1/replicas so the
    # summed gradients are the single-replica gradient.
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    return objectives.diversity_loss(mean_probs,
                                     self.diversity_floor) / replicas

  def _source_loss(self, scores, labels, weights, global_batch,
                   label_smoothing=0.0):
    per_sample = objectives.weighted_source_loss(
        tf.nn.log_softmax(tf.cast(scores, tf.float32)), labels, weights,
        label_smoothing)
    return tf.nn.compute_average_loss(per_sample,
                                      global_batch_size=global_batch)

  def compute_losses(self, data, training=True):
    """All SRDC loss terms of one source and one target batch.

    Each term is this replica's share of the mean over the global batch, so
    that summing gradients over replicas gives the single-replica gradient.

    Args:
      data: the training dict (see the class docstring).
      training: forward mode.

    Returns:
      `(total, terms, source_logits)`; `terms` maps `LOSS_TERMS` to scalars.
    """
    source_labels = tf.cast(data["source_label"], tf.int32)
    f_s, h_s, logits_s = self.embed(data["source_image"], training=training)
    global_source = _global_batch_size(source_labels)
    weights = tf.gather(self.source_weights,
                        tf.cast(data["source_index"], tf.int32))
    zero = tf.constant(0.0)
    terms = dict.fromkeys(LOSS_TERMS, zero)
    terms["source_output_loss"] = self._source_loss(
        logits_s, source_labels, weights, global_source,
        self.source_label_smoothing)
    penalty = tf.cast(self.penalty, tf.float32)
    total = terms["source_output_loss"]
    if not self.source_only:
      terms["source_f_loss"] = self._source_loss(
          self._assignment_logits(f_s, self.centres_f),
          source_labels, weights, global_source)
      terms["source_h_loss"] = self._source_loss(
          self._assignment_logits(h_s, self.centres_h),
          source_labels, weights, global_source)
      f_t, h_t, logits_t = self.embed(data["target_image"], training=training)
      global_target = _global_batch_size(logits_t)
      pseudo_labels = tf.gather(self.target_pseudo_labels,
                                tf.cast(data["target_index"], tf.int32))
      # Dropped samples still count in the mean's denominator, so the
      # threshold lowers the target terms' weight as well as their reach.
      mask = (objectives.confidence_mask(
          tf.nn.softmax(tf.cast(logits_t, tf.float32)),
          self.target_confidence_threshold)
              if self.target_confidence_threshold else None)
      terms["target_output_loss"] = self._target_clustering_loss(
          logits_t, pseudo_labels, global_target, mask)
      terms["target_f_loss"] = self._target_clustering_loss(
          self._assignment_logits(f_t, self.centres_f),
          pseudo_labels, global_target, mask)
      terms["target_h_loss"] = self._target_clustering_loss(
          self._assignment_logits(h_t, self.centres_h),
          pseudo_labels, global_target, mask)
      target = terms["target_output_loss"]
      if self.feature_clustering:
        target += terms["target_f_loss"] + terms["target_h_loss"]
      terms["target_diversity_loss"] = self._target_diversity_loss(logits_t)
      total += penalty * target
      if self.diversity_weight:
        total += penalty * self.diversity_weight * terms[
            "target_diversity_loss"]
      if self.source_regularization:
        total += penalty * (terms["source_f_loss"] + terms["source_h_loss"])
    if self.weight_decay:
      replicas = tf.distribute.get_strategy().num_replicas_in_sync
      squares = tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                          for v in self.trainable_variables])
      terms["l2_loss"] = 0.5 * self.weight_decay * squares / replicas
      total += terms["l2_loss"]
    return total, terms, logits_s

  # === Steps ===

  def _lr_multipliers(self):
    """Each trainable variable's gradient factor, None for 1."""
    backbone = set()
    if self.backbone is not None:
      backbone.update(id(v) for v in self.backbone.trainable_variables)
    centres = {id(self.centres_f), id(self.centres_h)}
    slow = (None if self.backbone_lr_multiplier == 1.0
            else self.backbone_lr_multiplier)
    backbone_factor = slow
    if self.backbone_frozen_epochs:
      # A zero gradient is a zero SGD step (its momentum starts at zero).
      backbone_factor = self.backbone_lr_multiplier * self.backbone_trains
    return [backbone_factor if id(v) in backbone
            else slow if id(v) in centres else None
            for v in self.trainable_variables]

  def train_step(self, data):
    with tf.GradientTape() as tape:
      total, terms, logits_s = self.compute_losses(data, training=True)
    variables = self.trainable_variables
    gradients = tape.gradient(total, variables)
    # Scaling a gradient scales that variable's SGD step (momentum is linear
    # in it): the 0.1x learning rate of the backbone and the centres.
    gradients = [g if g is None or m is None else g * m
                 for g, m in zip(gradients, self._lr_multipliers())]
    self.optimizer.apply_gradients(
        [(g, v) for g, v in zip(gradients, variables) if g is not None])
    self._average_moving_statistics()
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    # Trackers hold the global-batch values (a replica's share x replicas).
    self.loss_trackers["loss"].update_state(total * replicas)
    for name, value in terms.items():
      self.loss_trackers[name].update_state(value * replicas)
    self.source_accuracy.update_state(data["source_label"], logits_s)
    return _as_logs({m.name: m.result() for m in self.train_metrics})

  def _average_moving_statistics(self):
    """Averages the backbone's unsynchronised BatchNorm moving statistics
    over replicas, after each training step.

    Keras 3 creates them with `aggregation="none"`: under a mirrored
    strategy each replica then updates its own copy from its own share of
    the batch and the copies drift apart, and whichever copy is read
    (evaluation, saving, the per-epoch inference pass on each worker)
    reflects 1/N of the data. The moving averages are linear in the batch
    statistics, so their mean over replicas is the moving average of the
    replicas' mean statistics: what tf.keras 2 kept. (fc1's BatchNorm is
    synchronised: its statistics are already those of the global batch.)
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
      return
    statistics = self._replica_moving_statistics()
    if not statistics:
      return
    averaged = context.all_reduce(tf.distribute.ReduceOp.MEAN,
                                  [v.value for v in statistics])
    for variable, value in zip(statistics, averaged):
      variable.assign(value)

  def _replica_moving_statistics(self):
    if self.backbone is None:
      return []
    statistics = []
    for layer in self.backbone._flatten_layers(include_self=False):  # pylint: disable=protected-access
      if (isinstance(layer, keras.layers.BatchNormalization)
          and layer.trainable and not layer.synchronized):
        statistics += [layer.moving_mean, layer.moving_variance]
    return statistics

  def test_step(self, data):
    images, labels = data[0], data[1]
    logits = self(images, training=False)
    self.target_accuracy.update_state(labels, logits)
    return _as_logs({"target_accuracy": self.target_accuracy.result()})

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Keras 3.15 reads a first batch here and averages it with
    # `strategy.reduce`, which fails under MultiWorkerMirroredStrategy with
    # more than one worker for a dict batch ("Attempt to convert a value
    # ({'source_image': PerReplica...}) ... to a Tensor"). The model is built
    # in __init__ and compiled without losses or metrics, so only the
    # optimizer is left to build, which needs no data. Without a strategy
    # Keras would build it inside the first trace of the training step,
    # and a trace that creates variables is traced twice.
    if (iterator is None
        or not all(layer.built for layer in self._flatten_layers())):
      return super()._maybe_symbolic_build(iterator=iterator,
                                           data_batch=data_batch)
    with self.distribute_strategy.scope():
      if self.optimizer is not None and not self.optimizer.built:
        self.optimizer.build(self.trainable_variables)
      self._post_build()

  @property
  def train_metrics(self):
    return list(self.loss_trackers.values()) + [self.source_accuracy]

  @property
  def metrics(self):
    return self.train_metrics + [self.target_accuracy]

  # === Serialisation ===

  def get_config(self):
    config = super().get_config()
    config.update({
        "backbone": (None if self.backbone is None else
                     keras.saving.serialize_keras_object(self.backbone)),
        "num_classes": self.num_classes,
        "input_shape": self.input_shape_,
        "num_source_examples": self.num_source_examples,
        "num_target_examples": self.num_target_examples,
        "bottleneck_dim": self.bottleneck_dim,
        "alpha": self.alpha,
        "beta": self.beta,
        "detach_q": self.detach_q,
        "feature_clustering": self.feature_clustering,
        "source_regularization": self.source_regularization,
        "source_only": self.source_only,
        "weight_decay": self.weight_decay,
        "backbone_lr_multiplier": self.backbone_lr_multiplier,
        "head_init": self.head_init,
        "feature_assignment": self.feature_assignment,
        "diversity_weight": self.diversity_weight,
        "diversity_floor": self.diversity_floor,
        "source_label_smoothing": self.source_label_smoothing,
        "target_confidence_threshold": self.target_confidence_threshold,
        "backbone_frozen_epochs": self.backbone_frozen_epochs,
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    if config.get("backbone") is not None:
      config["backbone"] = keras.saving.deserialize_keras_object(
          config["backbone"])
    return cls(**config)
