#!/usr/bin/env bash
# Regenerate the hash-pinned lock files from pyproject.toml:
#   requirements/production.lock  the runtime dependencies (the Docker image)
#   requirements/test.lock         runtime + the `test` and `dev` extras (CI, development)
#
# Run from anywhere, with Python 3.11 on Linux and pip-tools in a scratch venv:
#   python3.11 -m venv /tmp/lockvenv && /tmp/lockvenv/bin/pip install pip-tools
#   PATH=/tmp/lockvenv/bin:$PATH requirements/lock.sh            # keep pins, add what is new
#   PATH=/tmp/lockvenv/bin:$PATH requirements/lock.sh --upgrade  # move every pin to the newest allowed
#
# Resolution is against PyPI alone (no local pip configuration, mirrors or
# constraints). --generate-hashes records the hash of every file of each pinned
# release on PyPI, so the same lock installs on x86_64 and aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."

python - <<'PY'
import sys
if sys.version_info[:2] != (3, 11) or not sys.platform.startswith("linux"):
    sys.exit(f"lock.sh: resolve with CPython 3.11 on Linux, not {sys.version.split()[0]} on {sys.platform}")
PY

export PIP_CONFIG_FILE=/dev/null
unset PIP_FIND_LINKS PIP_EXTRA_INDEX_URL PIP_INDEX_URL PIP_CONSTRAINT PIP_NO_INDEX
export CUSTOM_COMPILE_COMMAND="requirements/lock.sh"

compile() {
    pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
        --resolver=backtracking --index-url=https://pypi.org/simple \
        --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
        "$@" pyproject.toml
}

compile --output-file=requirements/production.lock "$@"
compile --extra=test --extra=dev --output-file=requirements/test.lock "$@"
