#!/usr/bin/env bash
# Run (or resume) the recipe campaign from a frozen, non-editable install, so that work
# on the checkout does not change the code under a running experiment.
#
#   experiments/cifar10-recipe/run_campaign.sh pilot      # learning-rate pilot, then the teacher
#   experiments/cifar10-recipe/run_campaign.sh campaign   # teacher, step 1 and step 2, 4 seeds
#   experiments/cifar10-recipe/run_campaign.sh all        # campaign, upgrade, evaluate, upgrade-long
#   experiments/cifar10-recipe/run_campaign.sh upgrade-pilot  # the upgrade's learning rate
#   experiments/cifar10-recipe/run_campaign.sh upgrade    # fine-tuned vs dynamized, 4 seeds
#   experiments/cifar10-recipe/run_campaign.sh upgrade-explore  # dynamized at higher rates, seed 0
#   experiments/cifar10-recipe/run_campaign.sh upgrade-hyper    # dynamized, faster hyper functions
#   experiments/cifar10-recipe/run_campaign.sh upgrade-long     # 15 epochs: fine-tuned vs dynamized
#   experiments/cifar10-recipe/run_campaign.sh cost-static  # static at DyBNN's ARM cost, 4 seeds
#   experiments/cifar10-recipe/run_campaign.sh cost-screen  # cheaper hyper functions, step 1
#   experiments/cifar10-recipe/run_campaign.sh cost-screen-step2  # the screen's choice, step 2
#   experiments/cifar10-recipe/run_campaign.sh cost-constant  # hyper functions fed a constant
#   experiments/cifar10-recipe/run_campaign.sh int8-grid  # DyBNN step 2 on the int8 grid
#   experiments/cifar10-recipe/run_campaign.sh evaluate   # test split + tables so far, beside training
#   experiments/cifar10-recipe/run_campaign.sh results    # evaluate on test + aggregate
#   experiments/cifar10-recipe/run_campaign.sh save       # copy the state into the checkout
#   experiments/cifar10-recipe/run_campaign.sh save --finished-only  # mid-session: no checkpoint
#
# Every stage is resumable: finished runs are skipped, unfinished ones resume from
# their last epoch checkpoint. The first call clones the checkout's HEAD into
# $CAMPAIGN_DIR/src and installs it into $CAMPAIGN_DIR/.venv; later calls reuse that
# install (delete the folder's src and .venv to move to a newer commit, or set
# CAMPAIGN_COMMIT to install that commit instead of HEAD; finished runs
# keep the commit they were trained with in provenance.json). $CAMPAIGN_DIR defaults
# to ../recipe-campaign beside the checkout, so the sweep files' "../shared/data/cifar10"
# resolves there too. Runs go to $CAMPAIGN_DIR/runs/.
#
# The campaign outlives the machines it runs on: `save` copies what a later session
# needs (records, the models later runs start from, the newest checkpoint of an
# unfinished run) into experiments/cifar10-recipe/runs/ to be committed, and every
# stage first restores from there what $CAMPAIGN_DIR/runs lacks
# (experiments/campaign_state.py). The install is pinned to the commit in
# experiments/cifar10-recipe/COMMIT, so every session trains with the same code.
#
# The campaign's stages (pilot, campaign) run the sweep files of that commit. The
# upgrade stages were added after it: they run the pinned code on the checkout's
# upgrade-pilot.toml, upgrade.toml and upgrade-explore.toml (the pilot chooses
# upgrade.toml's learning rate), each run recording the sweep file it was trained
# with. `evaluate`, also newer than the pin, evaluates finished runs on the test split
# with the pinned code while a stage still trains, and tables them (the pinned sweep
# holds its folder's lock while it trains, so `results` must wait for it;
# experiments/evaluate_finished.py).
set -euo pipefail
STAGE="${1:?usage: run_campaign.sh pilot|campaign|all|upgrade-pilot|upgrade|upgrade-explore|upgrade-hyper|upgrade-long|cost-static|cost-screen|cost-screen-step2|cost-constant|int8-grid|evaluate|results|save}"
if [ "$STAGE" = all ]; then
    # What is left of issue 18's training, unattended across sessions: each stage
    # skips finished runs and resumes unfinished ones (then `save` and commit). The
    # exploratory upgrade-long comes last: the campaign and its tables go first.
    for stage in campaign upgrade evaluate upgrade-long; do
        "$0" "$stage"
    done
    exit 0
fi
REPO="${CAMPAIGN_REPO:-$(cd "$(dirname "$0")/../.." && pwd)}"
WORK="${CAMPAIGN_DIR:-$REPO/../recipe-campaign}"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
STATE="$REPO/experiments/cifar10-recipe/runs"
STATE_TOOL=(python3 "$REPO/experiments/campaign_state.py")
if [ "$STAGE" = save ]; then
    # The campaign's own Python has h5py: finished models are saved without optimizer state.
    [ -x "$WORK/.venv/bin/python" ] && STATE_TOOL[0]="$WORK/.venv/bin/python"
    saved=0
    SAVE_OPTIONS=("${@:2}")  # e.g. --finished-only
    for option in "${SAVE_OPTIONS[@]}"; do
        [ "$option" = --finished-only ] || { echo "save: unknown option '$option'" >&2; exit 2; }
    done
    save_sweep() {  # save_sweep SWEEP [OPTION]: one sweep folder, if it exists
        [ -d "$WORK/runs/$1" ] || return 0
        "${STATE_TOOL[@]}" save "${@:2}" "${SAVE_OPTIONS[@]}" --runs "$WORK/runs" \
            --state "$STATE" "$1"
        saved=1
    }
    # The models of the campaign (later runs start from them, they are evaluated and
    # may ship) and of the upgrade experiment (investigate.py reads the dynamized ones
    # on every seed at the end) are kept; of the pilot and the exploration (one seed,
    # investigated when it finished), the records only.
    save_sweep cifar10-recipe
    save_sweep cifar10-recipe-upgrade
    save_sweep cifar10-recipe-upgrade-pilot --records-only
    save_sweep cifar10-recipe-upgrade-explore --records-only
    save_sweep cifar10-recipe-upgrade-hyper --records-only
    # Long runs may finish unattended: their models stay for investigate.py.
    save_sweep cifar10-recipe-upgrade-long
    # The cost study: the cost-matched static model's step-2 models are evaluated (clean
    # and shifted inputs) and counted; a step-1 model is kept only until its step 2 has
    # finished. The later arms keep their records only: the issue caps the campaign's
    # growth of the repository at 40 MB, and 25 MB were spent when they started. Their
    # models (a screened step-1 model that the chosen configuration's step 2 starts from,
    # a grid-trained model that may ship) stay in $WORK/runs; on a new machine such a
    # run trains again.
    save_sweep cifar10-recipe-cost-static --drop-consumed
    save_sweep cifar10-recipe-cost-screen --records-only
    save_sweep cifar10-recipe-cost-screen-step2 --records-only
    save_sweep cifar10-recipe-cost-constant --records-only
    save_sweep cifar10-recipe-int8-grid --records-only
    [ "$saved" = 1 ] || echo "nothing to save in $WORK/runs" >&2
    exit 0
fi
if [ -z "${CAMPAIGN_FROZEN_SCRIPT:-}" ]; then
    "${STATE_TOOL[@]}" restore --runs "$WORK/runs" --state "$STATE"
fi
if [ -z "${CAMPAIGN_COMMIT:-}" ] && [ -f "$REPO/experiments/cifar10-recipe/COMMIT" ]; then
    export CAMPAIGN_COMMIT="$(cat "$REPO/experiments/cifar10-recipe/COMMIT")"
fi
source "$REPO/experiments/frozen_install.sh"
frozen_install "$REPO" "$WORK"
# Train with a frozen copy of this script: bash reads a script as it runs, so editing
# the checkout's copy during a campaign would change the commands being run. The
# campaign's stages use the pinned commit's copy (a copy older than this guard just
# runs its own stages); the upgrade stages, which that copy lacks, a snapshot of the
# checkout's.
if [ -z "${CAMPAIGN_FROZEN_SCRIPT:-}" ] && [ "$STAGE" != results ]; then
    frozen="$WORK/src/experiments/cifar10-recipe/run_campaign.sh"
    if [ "$STAGE" != pilot ] && [ "$STAGE" != campaign ]; then
        frozen="$WORK/.run_campaign-$STAGE.sh"
        cp "$0" "$frozen"
    fi
    CAMPAIGN_FROZEN_SCRIPT=1 CAMPAIGN_REPO="$REPO" CAMPAIGN_DIR="$WORK" \
        exec bash "$frozen" "$@"
fi
cd "$WORK"
export LARQ_DYBNN_COMMIT="$(git -C "$WORK/src" rev-parse HEAD)"
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
HERE="$WORK/src/experiments/cifar10-recipe"
CHECKOUT="$REPO/experiments/cifar10-recipe"
SWEEP=("$WORK/.venv/bin/larq-dybnn" sweep)
case "$STAGE" in
    pilot)
        "${SWEEP[@]}" "$HERE/pilot.toml" --output-dir runs/cifar10-recipe-pilot --skip-evaluation
        "${SWEEP[@]}" "$HERE/sweep.toml" --output-dir runs/cifar10-recipe --only teacher \
            --skip-evaluation ;;
    campaign)
        "${SWEEP[@]}" "$HERE/sweep.toml" --output-dir runs/cifar10-recipe --skip-evaluation ;;
    upgrade-pilot)
        "${SWEEP[@]}" "$CHECKOUT/upgrade-pilot.toml" \
            --output-dir runs/cifar10-recipe-upgrade-pilot --skip-evaluation ;;
    upgrade)
        "${SWEEP[@]}" "$CHECKOUT/upgrade.toml" --output-dir runs/cifar10-recipe-upgrade \
            --skip-evaluation ;;
    cost-static)
        # The campaign's pinned code on the checkout's cost-static.toml: a wider static
        # model under the campaign's exact protocol.
        "${SWEEP[@]}" "$CHECKOUT/cost-static.toml" --output-dir runs/cifar10-recipe-cost-static \
            --skip-evaluation ;;
    upgrade-explore)
        "${SWEEP[@]}" "$CHECKOUT/upgrade-explore.toml" \
            --output-dir runs/cifar10-recipe-upgrade-explore --skip-evaluation ;;
    cost-screen|cost-screen-step2|cost-constant|int8-grid)
        # --hyper-pool-stride, --hyper-input and --int8-hyper-kernels are newer than the
        # pin: the install at cost.commit, which reproduces the campaign's first epochs
        # exactly (cost/cross_commit_check*.json).
        CAMPAIGN_COMMIT="$(cat "$CHECKOUT/cost.commit")" \
            frozen_install "$REPO" "$WORK/cost-install"
        LARQ_DYBNN_COMMIT="$(git -C "$WORK/cost-install/src" rev-parse HEAD)" \
            "$WORK/cost-install/.venv/bin/larq-dybnn" sweep "$CHECKOUT/$STAGE.toml" \
            --output-dir "runs/cifar10-recipe-$STAGE" --skip-evaluation ;;
    upgrade-hyper|upgrade-long)
        # --hyper-lr-multiplier is newer than the pin: a second frozen install, at the
        # commit in upgrade-hyper.commit, beside the campaign's (same folder and data).
        CAMPAIGN_COMMIT="$(cat "$CHECKOUT/upgrade-hyper.commit")" \
            frozen_install "$REPO" "$WORK/upgrade-hyper-install"
        LARQ_DYBNN_COMMIT="$(git -C "$WORK/upgrade-hyper-install/src" rev-parse HEAD)" \
            "$WORK/upgrade-hyper-install/.venv/bin/larq-dybnn" sweep \
            "$CHECKOUT/$STAGE.toml" --output-dir "runs/cifar10-recipe-$STAGE" \
            --skip-evaluation ;;
    evaluate)
        "$WORK/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
            "$HERE/sweep.toml" runs/cifar10-recipe \
            --results-dir "$REPO/experiments/cifar10-recipe/campaign"
        if [ -d runs/cifar10-recipe-upgrade ]; then
            "$WORK/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
                "$CHECKOUT/upgrade.toml" runs/cifar10-recipe-upgrade \
                --results-dir "$REPO/experiments/cifar10-recipe/upgrade"
        fi
        if [ -d runs/cifar10-recipe-cost-static ]; then
            # The cost-matched static model: the same evaluation as the campaign's runs
            # (the pinned install), its table in cost/static/.
            "$WORK/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
                "$CHECKOUT/cost-static.toml" runs/cifar10-recipe-cost-static \
                --results-dir "$REPO/experiments/cifar10-recipe/cost/static"
        fi
        if [ -d runs/cifar10-recipe-cost-constant ]; then
            # Its models need the install that trained them (newer than the pin).
            "$WORK/cost-install/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
                "$CHECKOUT/cost-constant.toml" runs/cifar10-recipe-cost-constant \
                --results-dir "$REPO/experiments/cifar10-recipe/cost/constant"
        fi
        if [ -d runs/cifar10-recipe-cost-screen-step2 ]; then
            "$WORK/cost-install/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
                "$CHECKOUT/cost-screen-step2.toml" runs/cifar10-recipe-cost-screen-step2 \
                --results-dir "$REPO/experiments/cifar10-recipe/cost/screen-step2"
        fi
        if [ -d runs/cifar10-recipe-int8-grid ]; then
            "$WORK/cost-install/.venv/bin/python" "$REPO/experiments/evaluate_finished.py" \
                "$CHECKOUT/int8-grid.toml" runs/cifar10-recipe-int8-grid \
                --results-dir "$REPO/experiments/cifar10-recipe/cost/int8-grid"
        fi ;;
    results)
        "${SWEEP[@]}" "$HERE/sweep.toml" --output-dir runs/cifar10-recipe --skip-training \
            --results-dir "$REPO/experiments/cifar10-recipe/campaign"
        if [ -d runs/cifar10-recipe-upgrade ]; then
            "${SWEEP[@]}" "$CHECKOUT/upgrade.toml" --output-dir runs/cifar10-recipe-upgrade \
                --skip-training --results-dir "$REPO/experiments/cifar10-recipe/upgrade"
        fi ;;
    *) echo "unknown stage '$STAGE'" >&2; exit 2 ;;
esac
