"""SRDC-TF: Structurally Regularized Deep Clustering for domain adaptation.

`srdc_tf.fit(source=..., target=..., **settings)` trains; `srdc_tf.load(path)`
loads an export or a run directory for prediction (see `srdc_tf.api`).
Importing the package does not import TensorFlow.
"""

__version__ = "0.1.0"

from srdc_tf.api import fit  # noqa: E402
from srdc_tf.api import load  # noqa: E402

__all__ = ["__version__", "fit", "load"]
