# Sourced by the campaign scripts: a frozen, non-editable install of the checkout.
#
#   frozen_install REPO WORK
#
# Clones REPO into WORK/src (at $CAMPAIGN_COMMIT when set, else HEAD) and installs it
# into WORK/.venv, unless WORK/.venv already has larq-dybnn (delete WORK/src and
# WORK/.venv to move to a newer commit). Work on the checkout then never changes the
# code under a running experiment. An install at another commit than $CAMPAIGN_COMMIT
# is an error: runs of one sweep are trained by one commit.
frozen_install() {
    local repo="$1" work="$2"
    if [ -x "$work/.venv/bin/larq-dybnn" ] && [ -n "${CAMPAIGN_COMMIT:-}" ]; then
        local installed
        installed="$(git -C "$work/src" rev-parse HEAD)"
        if [ "$installed" != "$(git -C "$repo" rev-parse "$CAMPAIGN_COMMIT")" ]; then
            echo "frozen_install: $work is installed at $installed, not at the pinned" \
                "$CAMPAIGN_COMMIT; delete $work/src and $work/.venv to reinstall" >&2
            return 1
        fi
    fi
    if [ ! -x "$work/.venv/bin/larq-dybnn" ]; then
        rm -rf "$work/src" "$work/.venv"
        git clone --quiet "$repo" "$work/src"
        if [ -n "${CAMPAIGN_COMMIT:-}" ]; then
            git -C "$work/src" checkout --quiet "$CAMPAIGN_COMMIT"
        fi
        python3 -m venv "$work/.venv"
        "$work/.venv/bin/python" -m pip install --quiet --upgrade pip "setuptools>=68" wheel
        "$work/.venv/bin/python" -m pip install --quiet "$work/src"
    fi
}
