"""Commands, the engine status notification, settings (valid, invalid, changed) and configuration files."""

from __future__ import annotations

import pytest
from lsprotocol import types

from .conftest import codes, open_doc, published_for, start, until, uri

COMMANDS = ["storytransformer.recheckWorkspace", "storytransformer.loadModel", "storytransformer.unloadModel",
            "storytransformer.mergeStories", "storytransformer.engineStatus", "storytransformer.runModelChecks"]


async def test_commands_are_advertised_and_engine_status_is_sent(client, workspace):
    result = await start(client, workspace)
    assert set(COMMANDS) <= set(result.capabilities.execute_command_provider.commands)
    status = await until(lambda: client.engine_status, what="storytransformer/engineStatus")
    assert status[0]["state"] == "unavailable" and status[0]["reason"]
    reply = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.engineStatus"))
    assert reply["state"] == "unavailable" and "daemon" in reply["reason"]


async def test_recheck_workspace_reads_files_changed_on_disk(client, workspace):
    await start(client, workspace)
    more = uri(workspace / "more.txt")
    await until(lambda: more in client.diagnostics, what="scan")
    (workspace / "more.txt").write_text("As a member, I want to renew a loan online.\n", "utf-8")
    (workspace / "new.txt").write_text("I want to export the report.\n", "utf-8")  # a story (no role): a backlog
    reply = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.recheckWorkspace"))
    assert reply["files"] == 3
    await until(lambda: uri(workspace / "new.txt") in client.diagnostics, what="new file checked")
    assert "ST601" not in codes(client.diagnostics[more])


async def test_merge_command_without_a_model_says_why(client, workspace):
    await start(client, workspace)
    u = open_doc(client, workspace / "stories.txt")
    reply = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.mergeStories", arguments=[{"uri": u, "line": 0}, {"uri": u, "line": 3}]))
    assert reply["applied"] is False and reply["reason"].startswith("model unavailable:")
    bad = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="storytransformer.mergeStories", arguments=[{"uri": u}]))
    assert bad["applied"] is False and "line" in bad["reason"]
    await until(lambda: len(client.messages) >= 2, what="two messages")


async def test_invalid_settings_are_reported_and_replaced_by_defaults(client, workspace):
    await start(client, workspace, options={"debounceMs": "soon", "rules": {"ST101": "loud", "ST999": "off"},
                                            "fixOnSave": {"model": "yes"}})
    await until(lambda: len(client.messages) >= 4, what="one message per bad setting")
    text = "\n".join(m.message for m in client.messages)
    for key in ("debounceMs", "rules.ST101", "ST999", "fixOnSave.model"):
        assert key in text
    # still serving, with the default severity for ST101
    stories = uri(workspace / "stories.txt")
    await until(lambda: stories in client.diagnostics, what="diagnostics")
    assert "ST101" in codes(client.diagnostics[stories])


async def test_configuration_change_takes_effect(client, workspace):
    client.set_configuration({"rules": {"ST101": "off"}}, section="storytransformer")
    await start(client, workspace, options={"debounceMs": 0})
    stories = uri(workspace / "stories.txt")
    await until(lambda: stories in client.diagnostics, what="diagnostics")
    assert "ST101" not in codes(client.diagnostics[stories])  # workspace/configuration is read at start
    client.set_configuration({"rules": {"ST101": "error"}}, section="storytransformer")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    await until(lambda: "ST101" in codes(client.diagnostics[stories]), what="ST101 back on")
    d = next(d for d in client.diagnostics[stories] if d.code == "ST101")
    assert d.severity == types.DiagnosticSeverity.Error


async def test_a_rule_turned_on_while_the_scan_runs_reaches_every_file(client, workspace):
    """Files the scan showed before the change are checked again once it ends, not left with the old rules."""
    for i in range(80):
        (workspace / f"team{i:02d}.txt").write_text("I want to export the report.\n", "utf-8")  # no role: ST101
    client.set_configuration({"rules": {"ST101": "off"}}, section="storytransformer")
    await start(client, workspace, options={"debounceMs": 0})
    await until(lambda: client.diagnostics, what="the scan's first files")
    client.set_configuration({"rules": {"ST101": "error"}}, section="storytransformer")
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
    files = [uri(workspace / "stories.txt")] + [uri(workspace / f"team{i:02d}.txt") for i in range(80)]
    await until(lambda: all("ST101" in codes(client.diagnostics.get(f, [])) for f in files), what="ST101 everywhere")


async def test_a_broken_configuration_file_is_shown_and_defaults_are_used(client, workspace):
    (workspace / ".storytransformer.toml").write_text("max_words = 'many'\n", "utf-8")
    await start(client, workspace)
    msg = await until(lambda: [m for m in client.messages if ".storytransformer.toml" in m.message], what="message")
    assert "max_words" in msg[0].message and msg[0].type == types.MessageType.Error
    await until(lambda: uri(workspace / "stories.txt") in client.diagnostics, what="diagnostics with defaults")


@pytest.mark.parametrize("bad", [[{"uri": 3, "line": 0}], ["nonsense"], [[{"uri": "file:///x", "line": -1}]]])
def test_story_refs_reject_bad_arguments(bad):
    from storytransformer_server.lsp.commands import story_refs

    with pytest.raises(ValueError, match="argument 1"):
        story_refs(tuple(bad))


def test_options_parsing_reports_each_problem():
    from storytransformer_server.lsp.options import ServerOptions, parse_options

    opts, errors = parse_options({"debounceMs": 40, "rules": {"st301": "Hint"}, "daemon": {"enabled": False}},
                                 {"ST301"})
    assert errors == [] and opts.debounce_ms == 40 and opts.rules == {"ST301": "hint"} and not opts.daemon.enabled
    opts, errors = parse_options({"debounceMs": -1, "rules": [], "daemon": {"timeoutS": 0}}, {"ST301"})
    assert opts == ServerOptions() and len(errors) == 3
    assert parse_options("loud")[0] == ServerOptions()
    # the engine settings the VS Code extension sends
    opts, errors = parse_options({"model": "/models/qwen", "quantization": "nf4", "device": "cuda:1",
                                  "remoteUrl": "", "trace": {"server": "off"}})
    assert errors == [] and opts.engine.to_engine_config() == {"model": "/models/qwen", "quantization": "nf4",
                                                               "device": "cuda:1"}
    opts, errors = parse_options({"quantization": "fp4", "device": "gpu", "remoteUrl": "ftp://x"})
    assert opts.engine.to_engine_config() == {} and len(errors) == 3
