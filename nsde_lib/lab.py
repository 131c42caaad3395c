"""`make lab`: JupyterLab on the course notebooks, on loopback only, behind a fresh token."""
from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, notebook_dir: Path) -> list[str]:
    """The JupyterLab command line: loopback, a token, no browser."""
    return [sys.executable, "-m", "jupyter", "lab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebook_dir}"]


def main() -> int:
    token = os.environ.get("NSDE_LAB_TOKEN") or secrets.token_urlsafe(24)
    port = int(os.environ.get("NSDE_LAB_PORT") or free_port())
    url = f"http://127.0.0.1:{port}/lab?token={token}"
    print(f"JupyterLab on loopback only. Open:\n\n    {url}\n", flush=True)
    try:
        return subprocess.call(lab_command(port, token, ROOT / "notebooks"))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
