#!/usr/bin/env bash
# The Nimbus benchmark: builds the release binary and the floor harness, then measures warm
# and cold invokes next to the floor in the same run. Not a test: prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== building nimbus (release)"
cargo build --release -q -p nimbus
floor_src="../shared/bench-floor"
if [ -d "$floor_src/rapid-mini" ]; then
  echo "== building the floor harness (rapid-mini)"
  cargo build --release -q --manifest-path "$floor_src/rapid-mini/Cargo.toml" --target-dir target/bench-floor
  export FLOOR_BIN="$PWD/target/bench-floor/release/rapid-mini" FLOOR_DIR="$(cd "$floor_src" && pwd)"
fi
python=/usr/bin/python3
[ -x "$python" ] || python="$(python3 -c 'import os,sys;print(os.path.realpath(sys.executable))')"
exec "$python" bench/bench.py
