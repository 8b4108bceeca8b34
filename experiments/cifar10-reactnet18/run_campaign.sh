#!/usr/bin/env bash
# Run (or resume) the CIFAR-10 campaign from a frozen, non-editable install, so that
# work on the checkout does not change the code under a running experiment.
#
#   experiments/cifar10-reactnet18/run_campaign.sh          # train (resumable)
#   larq-dybnn sweep experiments/cifar10-reactnet18/sweep.toml \
#       --output-dir ../campaign-run/runs/cifar10-reactnet18 --skip-training \
#       --results-dir experiments/cifar10-reactnet18          # evaluate + aggregate
#
# The first call clones the checkout's HEAD into $CAMPAIGN_DIR/src and installs it
# into $CAMPAIGN_DIR/.venv; later calls reuse that install (delete the folder's src
# and .venv to move the campaign to a newer commit). $CAMPAIGN_DIR defaults to
# ../campaign-run beside the checkout, so the sweep file's "../shared/data/cifar10"
# resolves there too. Runs go to $CAMPAIGN_DIR/runs/cifar10-reactnet18, the main
# comparison (static and DyBNN r=16, 3 seeds) first, then the ablations.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${CAMPAIGN_DIR:-$REPO/../campaign-run}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
source "$(dirname "$0")/../frozen_install.sh"
frozen_install "$REPO" "$WORK"
cd "$WORK"
export LARQ_DYBNN_COMMIT="$(git -C "$WORK/src" rev-parse HEAD)"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
SWEEP="$WORK/src/experiments/cifar10-reactnet18/sweep.toml"
"$WORK/.venv/bin/larq-dybnn" sweep "$SWEEP" --output-dir runs/cifar10-reactnet18 \
    --only static,dybnn-both-r16 --skip-evaluation
"$WORK/.venv/bin/larq-dybnn" sweep "$SWEEP" --output-dir runs/cifar10-reactnet18 \
    --skip-evaluation
