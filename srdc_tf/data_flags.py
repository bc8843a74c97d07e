"""The flags that say where data lives, shared by every binary that reads a
data spec (`srdc_tf.train`, `srdc_tf.evaluate`)."""

from absl import flags


def define_data_location_flags():
  """Defines `--data_root` and `--tfds_data_dir`, unless a module imported
  in the same process (another binary, in a test session) already did."""
  if "tfds_data_dir" in flags.FLAGS:
    return
  flags.DEFINE_string(
      "data_root", None, "Folder that relative directory and image-list "
      "specs start from; default: $SRDC_DATA_ROOT, else the working "
      "directory.")
  flags.DEFINE_string(
      "tfds_data_dir", None, "TensorFlow Datasets data_dir (default: "
      "$TFDS_DATA_DIR or ~/tensorflow_datasets). Nothing is downloaded.")
