r"""Trains SRDC (or the source-only baseline) from absl flags.

  python -m srdc_tf.train --flagfile=flags/default.cfg --model_dir=runs/default

Killed, the same command resumes the run from its last backup in
<model_dir>/backup (see --checkpoint_every_steps).
"""

import os
import sys

from absl import app
from absl import flags

from srdc_tf import cli
from srdc_tf import collapse_guard
from srdc_tf import data_flags
from srdc_tf import selection

FLAGS = flags.FLAGS

# === Data ===
flags.DEFINE_string("task", None, "Task name for reports (default: "
                    "<source>-><target>).")
flags.DEFINE_string("source", None, "Source domain spec (labelled).")
flags.DEFINE_string("target", None, "Target domain spec (labels only used "
                    "for reporting).")
flags.DEFINE_string("target_eval", None, "Spec of the labelled target set "
                    "the model is scored on; default: --target itself "
                    "(transductive).")
data_flags.define_data_location_flags()
flags.DEFINE_string("source_list_root", None, "Root of the paths in a source "
                    "image list (default: the list's folder).")
flags.DEFINE_string("target_list_root", None, "Root of the paths in a target "
                    "image list (default: the list's folder).")
flags.DEFINE_string("target_eval_list_root", None, "Root of the paths in a "
                    "--target_eval image list (default: --target_list_root "
                    "if set, else the list's folder). MNIST-M's two lists "
                    "name files of two folders.")
flags.DEFINE_boolean("shared_classes", False, "Keep only the classes source "
                     "and target share instead of failing on a mismatch.")
flags.DEFINE_integer("synthetic_examples_per_class", 300,
                     "Images per class of a synthetic domain.")
flags.DEFINE_integer("image_size", 32, "Side of the square network input.")
flags.DEFINE_integer("resize_size", None, "Resize the shorter side to this "
                     "and crop --image_size (random in training). Unset: "
                     "resize straight to --image_size.")
flags.DEFINE_boolean("random_flip", False, "Random horizontal flips.")
flags.DEFINE_integer("random_translate", 0, "Random shifts of up to this "
                     "many pixels in training (padding: --augment_fill), e.g. 4 for "
                     "digits.", lower_bound=0)
flags.DEFINE_float("random_rotation", 0.0, "Random rotations of up to this "
                   "many degrees in training, e.g. 10 for digits.",
                   lower_bound=0.0, upper_bound=180.0)
flags.DEFINE_float("random_scale", 0.0, "Random zooms in training by a "
                   "factor drawn log-uniformly from [1 / (1 + s), 1 + s], "
                   "e.g. 0.4 for digits of two sizes (USPS digits fill their "
                   "frame, MNIST digits 20x20 of 28x28).",
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_float("random_shear", 0.0, "Random horizontal slants of up to "
                   "this many degrees in training, e.g. for handwriting "
                   "deslanted in one domain (USPS) and not in the other "
                   "(MNIST).", lower_bound=0.0, upper_bound=89.0)
flags.DEFINE_enum("augment_fill", "zeros", ["zeros", "reflect"],
                  "What --random_translate, --random_rotation, "
                  "--random_scale and --random_shear put where "
                  "no pixel was: black ('zeros', neutral on black "
                  "backgrounds such as MNIST's) or the image mirrored about "
                  "its edge ('reflect', for textured or coloured images, "
                  "where black borders are a feature clustering can learn).")
flags.DEFINE_enum("colour_augmentation", "none",
                  ["none", "channel_inversion", "channel_levels"],
                  "Colour augmentation of both domains in training: none; "
                  "each channel inverted (255 - x) with probability 1/2, "
                  "independently ('channel_inversion': grey digits become "
                  "coloured, and dark on bright as well as bright on dark); "
                  "or each channel's range mapped linearly onto a random "
                  "interval, either way round ('channel_levels': any stroke "
                  "and background colour, at any contrast).")
flags.DEFINE_integer("channels", 3, "Image channels fed to the backbone.")
flags.DEFINE_boolean("skip_bad_images", False, "Train without image files "
                     "that cannot be used (unreadable, corrupt, truncated, "
                     "not images, too small or large, listed twice), listing "
                     "them in a warning and counting them in the summary, "
                     "instead of stopping before training.")
flags.DEFINE_integer("min_image_side", 8, "Smallest accepted image width or "
                     "height, in pixels.")
flags.DEFINE_integer("max_image_side", 8192, "Largest accepted image width "
                     "or height, in pixels.")

# === Model ===
flags.DEFINE_string("backbone", "lenet", "Backbone architecture.")
flags.DEFINE_string("weights", None, "Backbone weights: 'imagenet', or a "
                    "weights file of the architecture; unset: random.")
flags.DEFINE_boolean("freeze_backbone", False, "Do not train the backbone: "
                     "its features are computed once per image and cached "
                     "(no augmentation).")
flags.DEFINE_integer("trainable_layers", None, "Train only this many last "
                     "layers of the backbone (the top above a cut that one "
                     "tensor crosses, e.g. 12 = MobileNetV2's last block); "
                     "the layers below are frozen and their activations "
                     "cached, see --cached_views.")
flags.DEFINE_string("trainable_from", None, "Like --trainable_layers, by the "
                    "name of the first trainable layer (e.g. "
                    "block_16_expand).")
flags.DEFINE_integer("cached_views", None, "Views of each image whose "
                     "frozen activations are cached: the evaluation view "
                     "and V - 1 augmented training views (crops and flips), "
                     "drawn at random as the training augmentation (default "
                     "4; 1: the evaluation view alone, no augmentation). "
                     "0 below --trainable_layers / --trainable_from: no "
                     "cache, the whole network runs at every step.",
                     lower_bound=0)
flags.DEFINE_string("feature_cache_dir", None, "Where cached backbone "
                    "features live (default: <model_dir>/feature_cache); "
                    "share it between runs of the same data and backbone.")
flags.DEFINE_integer("bottleneck_dim", 512, "Width of fc1 (feature h).")

# === Method ===
flags.DEFINE_boolean("source_only", False, "Train the source-only baseline.")
flags.DEFINE_boolean("with_baseline", False, "Also train the source-only "
                     "baseline the same way (in <model_dir>/source_only) "
                     "and print both target accuracies.")
flags.DEFINE_float("alpha", 1.0, "Student-t degrees of freedom.")
flags.DEFINE_float("beta", 1.0, "Weight of q against k-means pseudo-labels.")
flags.DEFINE_boolean("detach_q", False, "Stop the gradient through q.")
flags.DEFINE_boolean("feature_clustering", True,
                     "Cluster the target at features f and h too.")
flags.DEFINE_boolean("source_regularization", True,
                     "Structural source terms at features f and h.")
flags.DEFINE_boolean("soft_selection", True, "Soft source sample selection.")
flags.DEFINE_boolean(
    "recalibrate_batch_norm", True, "At the end of every epoch, set fc1's "
    "BatchNorm inference statistics to the exact moments over the whole "
    "un-augmented target (the source for --source_only) instead of the "
    "moving averages of training batches (--norecalibrate_batch_norm: the "
    "released code's behaviour).")
flags.DEFINE_integer("kmeans_iterations", 5, "K-means iterations per epoch.")
flags.DEFINE_boolean("spherical_kmeans", False, "Spherical k-means.")
flags.DEFINE_enum("centre_init", "mean", ["mean", "target"],
                  "Learnable centres: (c_t + c_s) / 2, or c_t.")
flags.DEFINE_enum("empty_clusters", "keep", ["keep", "zero"],
                  "A k-means cluster that empties keeps its centre, and a "
                  "class never predicted starts k-means from its source "
                  "centroid ('keep'), or both become zero ('zero', the "
                  "released code).")
flags.DEFINE_enum("kmeans_labels", "final", ["final", "last_iteration"],
                  "Pseudo-labels from a last assignment to the final "
                  "k-means centres ('final'), or the last iteration's "
                  "assignment with c_t its means ('last_iteration', the "
                  "released code).")
flags.DEFINE_enum("feature_assignment", "softmax",
                  ["softmax", "normalized_kernel"],
                  "ptilde at f and h: softmax of the Student-t kernel (the "
                  "released code), or the kernel over its sum "
                  "('normalized_kernel', DEC's assignment; beyond the "
                  "released code).")
flags.DEFINE_float("diversity_weight", 0.0,
                   "Weight of KL(mean target prediction || uniform), ramped "
                   "with lambda: resists collapse onto a few classes "
                   "(SHOT's diversity term; beyond the paper, which is 0).")
flags.DEFINE_float("diversity_floor", 1.0,
                   "The diversity term acts only while the target batch's "
                   "balance (entropy of its mean prediction / log K) is "
                   "below this: 1 = the whole KL to uniform, below 1 a "
                   "barrier against collapse.")
flags.DEFINE_float("source_label_smoothing", 0.0,
                   "Label smoothing eps of the output-level source "
                   "cross-entropy (beyond the paper, which is 0).")
flags.DEFINE_float("target_confidence_threshold", 0.0,
                   "Target samples whose largest predicted probability is "
                   "below this are left out of a step's target clustering "
                   "terms (beyond the paper, which is 0: every sample).")
flags.DEFINE_integer("warmup_epochs", 1,
                     "Epochs at the start that train on the source alone "
                     "(lambda 0) before the paper's ramp of the target "
                     "terms runs over the remaining ones (1: the paper; "
                     "above 1 beyond it).")
flags.DEFINE_integer("refinement_epochs", None,
                     "The last epochs train on target labels voted by each "
                     "target sample and its --refinement_neighbours nearest "
                     "target neighbours (cosine of the backbone's features), "
                     "taken once at the first of them (beyond the paper; "
                     "0: none, the paper; default: 5 when at least 10 "
                     "epochs of clustering come before them after "
                     "--warmup_epochs, else 0).")
flags.DEFINE_integer("refinement_neighbours", 3,
                     "Neighbours of each target sample in the vote of "
                     "--refinement_epochs (3: NRC's and AaD's Office-31 "
                     "value).")
flags.DEFINE_float("lenet_dropout", 0.0,
                   "Dropout rate of a trained LeNet: on conv2's channels "
                   "and on fc's units, as CDAN's and SHOT's LeNet (0.5); "
                   "0 builds no dropout layer.")
flags.DEFINE_enum("head_init", "glorot", ["glorot", "pytorch"],
                  "Initialisation of fc1 and fc2: Keras' Glorot uniform, or "
                  "PyTorch's nn.Linear default (the released code).")

# === Optimisation ===
flags.DEFINE_integer("epochs", 200, "Epochs E.")
flags.DEFINE_integer("steps_per_epoch", None, "Override the epoch length "
                     "(default: max of source and target batches).")
flags.DEFINE_enum("epoch_structure", "stream", ["stream", "passes"],
                  "Each domain one endless shuffled stream of batches "
                  "('stream'), or shuffled passes of whole batches with the "
                  "last partial one dropped and epochs of max(whole source, "
                  "target batches) steps ('passes', the released code).")
flags.DEFINE_enum("momentum_convention", "keras", ["keras", "pytorch"],
                  "When the learning rate changes, keep Keras' momentum "
                  "buffer ('keras': lr inside the buffer) or rescale it so "
                  "that the update is PyTorch's ('pytorch', the released "
                  "code).")
flags.DEFINE_integer("batch_size", 64, "Global batch of each domain.")
flags.DEFINE_float("lr", 0.01, "Base learning rate.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 1e-4, "Coupled L2 weight decay.")
flags.DEFINE_float("backbone_lr_multiplier", 0.1, "Learning-rate factor of "
                   "the backbone and the centres.")
flags.DEFINE_enum("backbone_batch_norm", "train",
                  ["train", "frozen"],
                  "BatchNorm layers of a trained backbone (or of its top "
                  "above the cut): 'train' normalises each batch by its own "
                  "statistics and trains scale and offset (the paper); "
                  "'frozen' keeps the pretrained statistics, scale and "
                  "offset (inference mode, Keras' fine-tuning recipe).")
flags.DEFINE_integer("backbone_frozen_epochs", 0,
                     "Epochs at the start during which a trained backbone "
                     "(or its top above the cut) does not train: no weight "
                     "update, BatchNorm in inference mode; it trains from "
                     "the next epoch on at the scheduled rate (0: from the "
                     "first step, the paper).")
flags.DEFINE_integer("seed", 0, "Random seed.")

# === Runtime ===
flags.DEFINE_string("model_dir", None, "Run directory (checkpoints, logs, "
                    "metrics).")
flags.DEFINE_boolean("overwrite", False, "If --model_dir holds a run "
                     "(finished or backed up) of other settings, move it "
                     "aside to <model_dir>.replaced-<time> and start "
                     "afresh, instead of refusing.")
flags.DEFINE_string("export_dir", None, "Export base; the SavedModel goes "
                    "to <export_dir>/<next version>/. Empty: no export.")
flags.DEFINE_string("strategy", "default", "default, mirrored or "
                    "multi_worker.")
flags.DEFINE_integer("num_cpu_devices", 0, "With --strategy=mirrored and "
                     "no GPU: logical CPU devices to mirror over.")
flags.DEFINE_float("peer_timeout", 600, "With --strategy=multi_worker: "
                   "seconds to wait for every worker of TF_CONFIG's cluster "
                   "to join; then stop, naming the peers that do not "
                   "answer.")
flags.DEFINE_integer("verbose", 2, "Output: 0 only the final accuracies; "
                     "1 also each phase's name and one line per epoch; 2 "
                     "also progress on long passes; 3 also Keras' line of "
                     "every logged value.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"],
                  "Compute dtype of the layers: mixed_bfloat16 computes in "
                  "bfloat16 with float32 weights (faster on CPUs with "
                  "AVX512-BF16/AMX); losses, logits, centres and the "
                  "per-epoch state stay float32.")
flags.DEFINE_boolean("fused_batch_norm", True, "The BatchNorm layers of "
                     "resnet50 and mobilenet_v2 run TensorFlow's fused "
                     "kernel (the same math as Keras' layer, to float32 "
                     "round-off, and about twice as fast on a CPU); "
                     "--nofused_batch_norm: Keras' own ops.")
flags.DEFINE_boolean("force_precision", False, "Run --precision="
                     "mixed_bfloat16 also on a CPU without native bfloat16, "
                     "where it is slower than float32.")
flags.DEFINE_boolean("deterministic", False, "Deterministic kernels "
                     "(tf.config.experimental.enable_op_determinism): the "
                     "same seed gives the same weights, also across a "
                     "resume. Slower.")
flags.DEFINE_integer("checkpoint_every_steps", 500, "Back the training "
                     "state up every this many steps (and at every epoch "
                     "end) into <model_dir>/backup; 0: at epoch ends only.")
flags.DEFINE_string("worker_weights_dir", None, "Every worker also writes "
                    "its final weights, tables and optimizer state to "
                    "<dir>/<worker>.weights.h5 (to check that the replicas "
                    "of a distributed run agree).")

# === Model selection and the collapse guard ===
flags.DEFINE_enum("select_by", selection.DEFAULT_SELECT_BY,
                  list(selection.SELECT_BY),
                  "Which epoch's weights become model.keras and the "
                  "export: the last, or the best on a label-free target "
                  "score (entropy: lowest; balance, snd, kmeans_agreement: "
                  "highest). See README, 'Label-free scores'.")
flags.DEFINE_boolean("exclude_after_herding",
                     selection.DEFAULT_EXCLUDE_AFTER_HERDING,
                     "Adaptation runs: once the target predictions have "
                     "collapsed after an epoch in which they had not (a "
                     "herd), no later epoch is selected, even one whose "
                     "predictions spread again. See README, 'Label-free "
                     "scores'.")
flags.DEFINE_enum("on_collapse", "warn", list(collapse_guard.ON_COLLAPSE),
                  "When the collapse guard fires on the adapted model: only "
                  "warn, or (with --with_baseline) keep and export the "
                  "better-scored of it and the source-only baseline.")

flags.mark_flags_as_required(["source", "target", "model_dir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # Imported after flag parsing so that --help and flag errors are instant.
  from srdc_tf import run_settings  # pylint: disable=g-import-not-at-top
  from srdc_tf import training  # pylint: disable=g-import-not-at-top
  from srdc_tf.callbacks import divergence  # pylint: disable=g-import-not-at-top

  settings = run_settings.RunSettings.from_flags(FLAGS)
  try:
    results, _ = training.train(settings, FLAGS.with_baseline,
                                FLAGS.overwrite, FLAGS.strategy,
                                FLAGS.num_cpu_devices, FLAGS.force_precision,
                                FLAGS.peer_timeout)
  except training.InputError as error:
    raise app.UsageError(str(error)) from error
  except divergence.TrainingDivergedError as error:
    sys.exit(f"error: {error}")
  print(f"\n=== Target accuracy on {settings.target_eval or settings.target} ===")
  for method, result in results.items():
    if result.get("reused"):
      how = ", finished earlier"
    elif result["resumed_from"]:
      how = f", resumed at step {result['resumed_from']}"
    else:
      how = ""
    if result.get("warnings"):
      how += f", {len(result['warnings'])} collapse-guard warning(s)"
    if method != "source_only" and result.get("exported") == "source_only":
      how += ", exported the source-only model (--on_collapse=fallback)"
    print(f"{method:>12}: {100 * result['target_accuracy']:.1f}%  "
          f"(train {result['seconds']:.0f}s{how})")
  skipped = sum(next(iter(results.values()))["skipped_images"].values())
  if skipped:
    print(f"Skipped {skipped} bad image file(s) (--skip_bad_images); they are "
          f"listed in {os.path.join(settings.model_dir, 'run_info.json')}.")


def parse_flags(argv):
  """Parses the command line like absl, but an unknown flag read from a
  flagfile is reported with the file and line that hold it."""
  try:
    return FLAGS(argv)
  except flags.UnrecognizedFlagError as error:
    where = _find_in_flagfiles(argv, error.flagname)
    message = f"{error}{f' (in {where})' if where else ''}"
  except flags.Error as error:
    message = cli.flag_error_message(error)
  cli.usage_error(message)


def _find_in_flagfiles(argv, flag_name, seen=None):
  """`file:line` of the first flagfile line that sets `flag_name`."""
  seen = set() if seen is None else seen
  names = {f"--{flag_name}", f"--no{flag_name}", f"-{flag_name}"}
  for arg in argv:
    if not arg.lstrip("-").startswith("flagfile="):
      continue
    path = os.path.expanduser(arg.split("=", 1)[1])
    if path in seen or not os.path.isfile(path):
      continue
    seen.add(path)
    with open(path) as lines:
      lines = [line.strip() for line in lines]
    for number, line in enumerate(lines, 1):
      if line.split("=", 1)[0] in names:
        return f"{path}:{number}"
    nested = _find_in_flagfiles(lines, flag_name, seen)
    if nested:
      return nested
  return None


def cli_main():
  """The `srdc-train` console script."""
  cli.run(main, doc=__doc__, flags_parser=parse_flags)


if __name__ == "__main__":
  cli_main()
