"""Docker HEALTHCHECK of the one image: is the process of this container answering?

    python deploy/healthcheck.py            # the URL deploy/entrypoint.py recorded at start
    python deploy/healthcheck.py rasa       # or by role (gateway | rasa | actions), from the env

Exit 0 when the health URL answers HTTP 2xx within 4 s, 1 otherwise. Only the
standard library: it runs every few seconds and must be cheap.
"""
from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def health_url(argv: list[str]) -> str:
    from deploy.entrypoint import ROLES, health_file, service

    if argv and argv[0] in ROLES:
        return service(argv[0]).health_url
    return health_file().read_text().strip()


def main(argv: list[str]) -> int:
    try:
        url = health_url(argv)
    except (OSError, SystemExit) as e:
        print(f"unhealthy: no health URL ({e})", file=sys.stderr)
        return 1
    try:
        with urllib.request.urlopen(url, timeout=4) as r:
            ok = 200 <= r.status < 300
    except (urllib.error.URLError, OSError, ValueError) as e:
        print(f"unhealthy: {url}: {e}", file=sys.stderr)
        return 1
    print(f"{'healthy' if ok else 'unhealthy'}: {url}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
