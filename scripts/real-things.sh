#!/usr/bin/env bash
# Prepares the real things that sit beside this checkout in ../shared and prints the environment
# (`export NAME=VALUE` lines) that points the suite at them. Used by `make test`; quick on re-runs.
#   - ../shared/regtest: real lightningd and bitcoind, unpacked by its install.sh into .cache/ln-regtest
#   - ../shared/charge-lnd/v0.3.1: charge-lnd's own source, run as its own program from its own
#     virtualenv (.cache/charge-lnd-venv, its pinned requirements); never imported by lnlens
# With CI=true a real thing that is present but cannot be prepared is a failure (exit 1); elsewhere
# the suites that need it skip and say why.
set -uo pipefail
cd "$(dirname "$0")/.."
shared=${LNLENS_SHARED:-../shared}
cache=$PWD/.cache
fail() {
    echo "real-things: $*" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
}

if [ -x "$shared/regtest/install.sh" ]; then
    if bin=$("$shared/regtest/install.sh" "$cache/ln-regtest"); then
        echo "export PATH=\"$bin:\$PATH\""
        # This lightningd is built without Rust (no grpc, no clnrest): pyln-testing must not pass --grpc-port.
        echo "export RUST=0"
    else
        fail "../shared/regtest/install.sh failed: the real Core Lightning suite cannot run"
    fi
fi

chargelnd=$shared/charge-lnd/v0.3.1
if [ -f "$chargelnd/charge_lnd/charge_lnd.py" ]; then
    venv=$cache/charge-lnd-venv
    stamp=$venv/.installed-$(sha256sum "$chargelnd/requirements.txt" | cut -c1-16)
    if [ ! -f "$stamp" ]; then
        rm -rf "$venv"
        if python3 -m venv "$venv" >&2 && "$venv/bin/pip" install --quiet --disable-pip-version-check \
            -r "$chargelnd/requirements.txt" >&2; then
            touch "$stamp"
        else
            fail "could not create charge-lnd's virtualenv in $venv: the differential suite cannot run"
        fi
    fi
    if [ -f "$stamp" ]; then
        echo "export LNLENS_CHARGE_LND_PYTHON=\"$venv/bin/python\""
        echo "export LNLENS_CHARGE_LND_SRC=\"$(cd "$chargelnd" && pwd)\""
    fi
fi
