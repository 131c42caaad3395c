"""`make lab`: JupyterLab on loopback only, behind a token that the printed URL carries."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from coursekit import lab


def test_the_command_binds_loopback_and_carries_the_token(tmp_path):
    command = lab.lab_command(8123, "s3cret", tmp_path)
    ip_options = [a for a in command if re.match(r"--(ServerApp\.|NotebookApp\.)?ip=", a)]
    assert ip_options == ["--ServerApp.ip=127.0.0.1"]
    assert "--IdentityProvider.token=s3cret" in command
    assert "--ServerApp.port=8123" in command and "--no-browser" in command
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert not [a for a in command if "token=" in a and not a.endswith("=s3cret")]


def test_make_lab_prints_the_url_with_the_token_the_server_gets(monkeypatch, capsys):
    started = []
    monkeypatch.setattr(lab.subprocess, "call", lambda cmd: started.append(cmd) or 0)
    monkeypatch.delenv("NSDE_LAB_TOKEN", raising=False)
    monkeypatch.delenv("NSDE_LAB_PORT", raising=False)
    tokens = []
    for _ in range(2):
        assert lab.main() == 0
        url = re.search(r"http://(\S+?):(\d+)/lab\?token=(\S+)", capsys.readouterr().out)
        assert url, "no URL with a token printed"
        host, port, token = url.groups()
        assert host == "127.0.0.1"
        assert f"--IdentityProvider.token={token}" in started[-1]
        assert f"--ServerApp.port={port}" in started[-1]
        tokens.append(token)
    assert tokens[0] != tokens[1] and len(tokens[0]) >= 24   # fresh and unguessable


def _schema(plugin_id: str) -> dict:
    import jupyterlab

    package, plugin = plugin_id.split(":")
    for base in (Path(jupyterlab.__file__).parent / "schemas",
                 Path(lab.sys.prefix) / "share" / "jupyter" / "lab" / "schemas"):
        path = base / package / f"{plugin}.json"
        if path.exists():
            return json.loads(path.read_text())
    pytest.fail(f"JupyterLab has no settings schema for {plugin_id}: renamed?")


@pytest.mark.parametrize("plugin_id", sorted(lab.QUIET_SETTINGS))
def test_the_quiet_profile_uses_settings_this_jupyterlab_knows(plugin_id):
    """A misspelt or renamed setting would be ignored silently and the toast would be back."""
    schema = _schema(plugin_id)
    values = lab.QUIET_SETTINGS[plugin_id]
    assert set(values) <= set(schema["properties"]), set(values) - set(schema["properties"])
    jsonschema.validate(values, {"type": "object", "properties": schema["properties"]})


def test_settings_are_written_where_jupyterlab_reads_them(tmp_path):
    lab.write_settings(tmp_path, {"@jupyterlab/docmanager-extension:plugin": {"autosave": False}})
    path = tmp_path / "@jupyterlab" / "docmanager-extension" / "plugin.jupyterlab-settings"
    assert json.loads(path.read_text()) == {"autosave": False}
