#!/usr/bin/env bash
# The project's single test command (CI runs it through .ci/run).
#
#   1. lint        cargo fmt --check, cargo clippy -D warnings  (skip: NIMBUS_SKIP_LINT=1)
#   2. unit        cargo test --workspace
#   3. build       release nimbus binary and the Rust function fixture
#   4. venv        target/e2e-venv with pinned boto3/awscli/awslambdaric/pytest
#   5. e2e         pytest tests/runtime tests/e2e against target/release/nimbus
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac

step() { printf '\n==> %s\n' "$*"; }

# ---------------------------------------------------------------- 1. lint
if [[ "${NIMBUS_SKIP_LINT:-0}" == 1 ]]; then
  step "lint: skipped (NIMBUS_SKIP_LINT=1)"
else
  step "lint: cargo fmt --check + cargo clippy -D warnings"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets -- -D warnings
fi

# ---------------------------------------------------------------- 2. unit tests
step "unit: cargo test --workspace"
cargo test --workspace

# ---------------------------------------------------------------- 3. release build
step "build: cargo build --release (nimbus, rust-fn-fixture)"
cargo build --release
if [[ -f tests/fixtures/rust-fn/Cargo.toml ]]; then
  cargo build --release -p rust-fn-fixture
else
  echo "(tests/fixtures/rust-fn not present: the Rust function test will be skipped)"
fi
NIMBUS_BIN=$TARGET_DIR/release/nimbus
[[ -x "$NIMBUS_BIN" ]] || { echo "error: $NIMBUS_BIN was not built" >&2; exit 1; }

# ---------------------------------------------------------------- 4. e2e virtualenv
step "venv: target/e2e-venv (boto3 1.44.8, awscli 1.46.3, awslambdaric 4.2.2, pytest 8)"
VENV=$ROOT/target/e2e-venv

# A real interpreter, never a version-manager shim (a shim adds ~100 ms per start
# and may resolve differently in CI).
find_python() {
  if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    echo /usr/bin/python3
    return
  fi
  command -v python3 >/dev/null 2>&1 || { echo "error: python3 not found" >&2; return 1; }
  python3 -c 'import sys,os;print(os.path.realpath(sys.executable))'
}

venv_ok() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1
}

if ! venv_ok; then
  PYTHON=$(find_python)
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$PYTHON" -m venv "$VENV"
  echo "created $VENV with $PYTHON"
fi

if ! "$VENV/bin/python" - <<'EOF'
import sys
from importlib.metadata import version, PackageNotFoundError
want = {"boto3": "1.44.8", "awscli": "1.46.3", "awslambdaric": "4.2.2"}
try:
    ok = all(version(k) == v for k, v in want.items()) and version("pytest").split(".")[0] == "8"
except PackageNotFoundError:
    ok = False
sys.exit(0 if ok else 1)
EOF
then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    'boto3==1.44.8' 'awscli==1.46.3' 'awslambdaric==4.2.2' 'pytest==8.*'
else
  echo "(requirements already satisfied)"
fi

# ---------------------------------------------------------------- 5. end-to-end tests
suites=()
[[ -d tests/runtime ]] && suites+=(tests/runtime)
suites+=(tests/e2e)
step "e2e: pytest ${suites[*]}"
export NIMBUS_BIN
export RUST_FN_FIXTURE_BIN=$TARGET_DIR/release/rust-fn-fixture
export PYTHONDONTWRITEBYTECODE=1
"$VENV/bin/python" -m pytest -q -rfEs -p no:cacheprovider -o faulthandler_timeout=600 "${suites[@]}"
