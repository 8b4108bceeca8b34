"""Write lce-sources.json: every file of the LCE kernel-source folder with its upstream
repository, commit, upstream path, local path and SHA256 (a maintainer's tool).

    python runtime/make_manifest.py REFERENCE_FOLDER CLONES_FOLDER \
        > application/device/lce-sources.json

REFERENCE_FOLDER is an assembled source folder (with its SHA256SUMS); CLONES_FOLDER
holds git clones named owner+name (larq+compute-engine, google+ruy, ...). Each file is
looked up at the pinned commits below and kept only if its bytes are identical there,
so the manifest records where every byte comes from. A file found nowhere stops it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

#: Upstream repositories and the commits the kernels compile against.
PINS = {
    "larq/compute-engine": "8da5a1974c33c9fc5ff1fda63df7a361f016de22",  # tag v0.16.0
    "google/ruy": "3286a34cc8de6149ac6844107dfdffac91531e72",
    "google/flatbuffers": "187240970746d00bbd26b0f5873ed54d2477f9f3",  # tag v25.9.23
    "google-ai-edge/LiteRT": "7d88950ea445f5b671d18e64f9614aff397fde50",
    # The converter headers (schema_generated.h and three C headers) of this commit:
    # the folder's README left them unpinned; these bytes match LiteRT here.
    "google-ai-edge/LiteRT@converter": "3647910a70fe34d0ee0cb96e2e00a421d77bf553",
    "google/gemmlowp": "e844ffd17118c1e17d94e1ba4354c075a4577b88",
}
#: Debian's copyright file of the gemmlowp package the headers came from (the
#: headers themselves are byte-identical to upstream at the pinned commit).
DEBIAN_GEMMLOWP = ("debian/gemmlowp", "0.0~git20211220.e844ffd-1", "debian/copyright")


def _candidates(local: str) -> list[tuple[str, str]]:
    """(pin key, upstream path) to try for a local path, in order."""
    if local.startswith("larq_compute_engine/"):
        return [("larq/compute-engine", local)]
    if local.startswith("ruy/"):
        return [("google/ruy", local)]
    if local.startswith("third_party/flatbuffers/"):
        return [("google/flatbuffers", local.removeprefix("third_party/flatbuffers/"))]
    if local.startswith("third_party/gemmlowp/"):
        return [("google/gemmlowp", local.removeprefix("third_party/gemmlowp/"))]
    if local.startswith("tensorflow/lite/"):
        return [("google-ai-edge/LiteRT", "tflite/" + local.removeprefix("tensorflow/lite/"))]
    if local.startswith("tensorflow/compiler/mlir/lite/"):
        return [("google-ai-edge/LiteRT@converter",
                 "tflite/converter/" + local.removeprefix("tensorflow/compiler/mlir/lite/"))]
    if local.startswith("tflite/"):
        return [("google-ai-edge/LiteRT", local), ("google-ai-edge/LiteRT@converter", local)]
    licenses = {"LICENSE.larq-compute-engine": "larq/compute-engine",
                "LICENSE.ruy": "google/ruy", "LICENSE.flatbuffers": "google/flatbuffers",
                "LICENSE.tflite": "google-ai-edge/LiteRT"}
    return [(licenses[local], "LICENSE")] if local in licenses else []


def main(argv: list[str]) -> int:
    reference, clones = Path(argv[0]), Path(argv[1])
    sums = {}
    for line in (reference / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(None, 1)
        sums[name.removeprefix("./")] = digest
    files = []
    for local, digest in sorted(sums.items()):
        if local == "LICENSE.gemmlowp":
            repository, version, path = DEBIAN_GEMMLOWP
            files.append({"repository": repository, "commit": version, "upstream_path": path,
                          "path": local, "sha256": digest,
                          "note": "Debian's copyright file of libgemmlowp-dev; not in git"})
            continue
        for key, path in _candidates(local):
            repository, commit = key.split("@")[0], PINS[key]
            clone = clones / repository.replace("/", "+") / "repo"
            shown = subprocess.run(["git", "-C", str(clone), "show", f"{commit}:{path}"],
                                   capture_output=True)
            if shown.returncode == 0 and hashlib.sha256(shown.stdout).hexdigest() == digest:
                files.append({"repository": repository, "commit": commit,
                              "upstream_path": path, "path": local, "sha256": digest})
                break
        else:
            print(f"{local}: found at no pinned commit", file=sys.stderr)
            return 1
    json.dump({"name": "lce-0.16.0-kernels",
               "description": "Larq Compute Engine 0.16.0's kernel sources and the headers "
                              "they compile against, for the aarch64 op library",
               "files": files}, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
