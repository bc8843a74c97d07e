"""Digests of file contents, for cache keys that follow what files hold
(the images of a domain, a weights file), not where they are or when they
were written."""

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
