"""`make lab`: JupyterLab on the course notebooks, on loopback only, behind a fresh token.

:func:`running_lab` starts the same server for the browser test: a fresh user profile (no
remembered tabs, no news toast, no autosave), started and always stopped by a ``with`` block.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def lab_command(port: int, token: str, notebook_dir: Path) -> list[str]:
    """The JupyterLab command line: loopback, a token, no browser.

    As root (containers, CI) Jupyter refuses to start without ``--allow-root``; the server
    still listens on loopback only, behind the token.
    """
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={notebook_dir}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


# JupyterLab user settings of the test profile, keyed by plugin id.
QUIET_SETTINGS = {
    # the "receive official Jupyter news?" toast would cover the notebook
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false",
                                                    "checkForUpdates": False},
    # running the notebook in the browser must never write outputs into the repository
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    # every cell in the DOM, so a widget far down the page can be found and driven
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
}


@dataclass
class LabServer:
    """A running JupyterLab started by :func:`running_lab`."""
    port: int
    token: str
    process: subprocess.Popen
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "lab", *, with_token: bool = True) -> str:
        """``base_url/path``, carrying the token as a query parameter unless told not to."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        if with_token:
            url += ("&" if "?" in url else "?") + f"token={self.token}"
        return url

    def log(self) -> str:
        """What the server has written to stdout and stderr so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def write_settings(settings_dir: Path, settings: dict[str, dict]) -> None:
    """Write JupyterLab user settings (``{"@scope/pkg:plugin": {...}}``) into ``settings_dir``."""
    for plugin_id, values in settings.items():
        package, plugin = plugin_id.split(":")
        target = settings_dir / package / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2))


def _wait_until_up(server: LabServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(server.url("api/status", with_token=False),
                                     headers={"Authorization": f"token {server.token}"})
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {server.process.returncode}:\n"
                               f"{server.log()[-3000:]}")
        try:
            with direct.open(request, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{server.log()[-3000:]}")


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when its parent dies (a killed test run leaves no server)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def stop(process: subprocess.Popen, grace: float = 15.0) -> None:
    """Stop a server started in its own session: SIGTERM (it shuts its kernels down), then
    SIGKILL for the whole process group."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)
    except ProcessLookupError:
        pass


@contextmanager
def running_lab(notebook_dir: Path, *, env: dict[str, str] | None = None,
                settings: dict[str, dict] | None = None, expose_app: bool = False,
                startup_timeout: float = 120.0) -> Iterator[LabServer]:
    """Run JupyterLab on 127.0.0.1 (free port, random token) with a fresh, quiet profile.

    The profile lives in a temporary folder: Jupyter config, data (kernelspecs) and runtime
    dirs, user settings (:data:`QUIET_SETTINGS` updated with ``settings``) and an empty
    workspaces dir, so a user's own setup, old tabs or news cannot get in the way. The server
    is stopped (and its kernels with it) when the block exits, also on an exception.

    Args:
        notebook_dir: the server's root folder.
        env: extra environment variables for the server and the kernels it starts
            (e.g. ``{"NSDE_QUICK": "1"}``).
        settings: extra user settings, keyed by plugin id.
        expose_app: set ``window.jupyterapp`` in JupyterLab's and Notebook 7's pages (for
            tests that drive commands).
        startup_timeout: seconds to wait for the server to answer.

    Yields:
        The running :class:`LabServer`.

    Raises:
        RuntimeError: the server exited or did not answer in time (its log in the message).
    """
    with tempfile.TemporaryDirectory(prefix="nsde-lab-") as tmp:
        profile = Path(tmp)
        for sub in ("config", "data", "runtime", "settings", "workspaces"):
            (profile / sub).mkdir()
        write_settings(profile / "settings", {**QUIET_SETTINGS, **(settings or {})})
        config = {"LabApp": {"news_url": None,
                             "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                             "expose_app_in_browser": expose_app},
                  # the same server serves Jupyter Notebook 7 (/tree, /notebooks/...)
                  "JupyterNotebookApp": {"expose_app_in_browser": expose_app}}
        (profile / "config" / "jupyter_server_config.json").write_text(json.dumps(config))
        server_env = {**os.environ, **(env or {}),
                      "JUPYTER_CONFIG_DIR": str(profile / "config"),
                      "JUPYTER_DATA_DIR": str(profile / "data"),
                      "JUPYTER_RUNTIME_DIR": str(profile / "runtime"),
                      "JUPYTERLAB_SETTINGS_DIR": str(profile / "settings"),
                      "JUPYTERLAB_WORKSPACES_DIR": str(profile / "workspaces")}
        port, token = free_port(), secrets.token_urlsafe(24)
        command = lab_command(port, token, Path(notebook_dir)) + [
            f"--LabApp.user_settings_dir={profile / 'settings'}",
            f"--LabApp.workspaces_dir={profile / 'workspaces'}"]
        log_path = profile / "server.log"
        on_linux = sys.platform == "linux"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, env=server_env, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True,  # its own group: stop() kills all
                                       preexec_fn=_die_with_parent if on_linux else None)
        server = LabServer(port, token, process, log_path)
        try:
            _wait_until_up(server, startup_timeout)
            yield server
        finally:
            stop(process)


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
