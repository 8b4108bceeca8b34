# Sourced by the campaign scripts: a frozen, non-editable install of the checkout.
#
#   frozen_install REPO WORK
#
# Clones REPO into WORK/src (at $CAMPAIGN_COMMIT when set, else HEAD) and installs it
# into WORK/.venv, unless WORK/.venv already has larq-dybnn (delete WORK/src and
# WORK/.venv to move to a newer commit). Work on the checkout then never changes the
# code under a running experiment.
frozen_install() {
    local repo="$1" work="$2"
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
