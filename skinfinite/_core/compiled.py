"""The key that keeps numba's disk cache true to the sources.

numba checks a cached kernel against its own source file only, not against
the files of the functions it inlines.  Cached entry points are therefore
built by factories closing over :data:`SOURCE_STAMP`, a digest of all the
package's sources: a change to any file gives every kernel a new cache key.
"""
import hashlib
import os


def _source_stamp():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()[:16]


#: Digest of the package's Python sources, closed over by every cached kernel.
SOURCE_STAMP = _source_stamp()
