#!/usr/bin/env bash
# Set up everything the project needs on a fresh machine, idempotently:
#   - the Python 3.10 virtual environment .venv with the exact pinned set
#     (requirements.lock), reinstalled only when the lock changes;
#   - with --system: the Debian packages the tests use, via apt-get when
#     missing (needs root, as in CI): chromium (browser tests of the web chat
#     and the staff console), a Chinese font for their screenshots, and nginx
#     (`nginx -t` of deploy/nginx.conf).
set -euo pipefail
cd "$(dirname "$0")/.."

find_python310() {
  for cand in "${PYTHON310:-}" python3.10 /usr/bin/python3.10 /usr/local/bin/python3.10; do
    [ -n "$cand" ] || continue
    if "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
      command -v "$cand"; return 0
    fi
  done
  # pyenv keeps 3.10 under its root even when it is not the active version.
  for cand in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python3.10; do
    [ -x "$cand" ] && { echo "$cand"; return 0; }
  done
  return 1
}

if [ ! -x .venv/bin/python ]; then
  PY=$(find_python310) || {
    echo "Python 3.10 is needed (Rasa 3.6 does not install on 3.11)." >&2
    echo "Install it (e.g. 'pyenv install 3.10' or your distribution's python3.10) or set PYTHON310=/path/to/python3.10." >&2
    exit 1
  }
  echo "creating .venv with $PY" >&2
  "$PY" -m venv .venv
fi

stamp=".venv/.installed-$(sha256sum requirements.lock | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing the pinned dependencies (requirements.lock) ..." >&2
  start=$(date +%s)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
  rm -f .venv/.installed-*
  touch "$stamp"
  echo "installed in $(( $(date +%s) - start )) s" >&2
fi

# Make the project's packages (core, bot, actions, nlu_ext, scripts) importable
# from every process of the venv: rasa, the action server, pytest.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ "$(cat "$site/county_eco_bot.pth" 2>/dev/null)" = "$PWD" ] || echo "$PWD" > "$site/county_eco_bot.pth"

if [ "${1:-}" = "--system" ]; then
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  # A Chinese font, so screenshots of the chat and the console show text, not boxes.
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ]; then
      echo "installing Debian packages for the tests: ${missing[*]} ..." >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "missing Debian packages: run 'sudo apt-get install -y ${missing[*]}' (the tests need them)" >&2
      exit 1
    fi
  fi
fi
