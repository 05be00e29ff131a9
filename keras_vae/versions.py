"""Installed versions of Python packages, for manifests and benchmark records."""

import importlib.metadata


def package_versions(*names):
    """Returns `{name: version}` for each distribution name, `None` where not installed.

    Args:
        *names: distribution names, e.g. `"keras"`, `"onnxruntime"`.

    Returns:
        A dict of strings (or `None`).
    """
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
