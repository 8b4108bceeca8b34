"""Device tooling: LCE's kernel sources assembled from pinned upstream commits, and the
aarch64 runtime wheel built from them (`larq-dybnn lce-sources`, `make wheel-arm`)."""
