"""Digests of file contents, for cache keys that follow what files hold.

TensorFlow-free, so that settings can be keyed before it starts.
"""

import hashlib

_CHUNK_BYTES = 2**20


def file_digest(path):
  """The SHA-1 of a file's bytes, as a hex string.

  Args:
    path: a file path.

  Returns:
    A hex string.
  """
  digest = hashlib.sha1()
  with open(path, "rb") as stream:
    for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b""):
      digest.update(chunk)
  return digest.hexdigest()
