"""Pure logic of the daemon, in-process: message parsing, framing, settings, paths, filters, the watcher's batching."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import struct

import msgpack
import pytest

from storytransformer_server.daemon import protocol as P
from storytransformer_server.daemon import rpc
from storytransformer_server.daemon.lifecycle import MAX_SOCKET_PATH, Paths, RuntimeDirError, ensure_private_dir
from storytransformer_server.daemon.settings import SettingsError, load_settings
from storytransformer_server.daemon.watcher import RootWatcher
from storytransformer_server.daemon.wire import finding_from_wire, finding_to_wire


def test_parse_message_kinds():
    assert isinstance(P.parse_message({"id": 1, "method": "status"}), P.Request)
    assert P.parse_message({"id": "a", "method": "x", "params": None}).params == {}
    assert isinstance(P.parse_message({"method": "cancel", "params": {"id": 1}}), P.Notification)
    resp = P.parse_message({"id": 3, "error": {"code": -32601, "message": "nope"}})
    assert isinstance(resp, P.Response) and resp.error.code == -32601
    with pytest.raises(P.DaemonError) as e:
        P.parse_message({"id": 4, "method": "x", "deadline_ms": -1})
    assert e.value.code == P.INVALID_REQUEST and e.value.data == {"id": 4}
    with pytest.raises(P.DaemonError):
        P.parse_message({"id": True, "method": "x"})  # a bool is not an id


def test_version_compatibility():
    assert P.version_compatible([P.PROTOCOL_VERSION[0], 99])
    assert not P.version_compatible([P.PROTOCOL_VERSION[0] + 1, 0])
    assert not P.version_compatible("1.0")


def _reader(data: bytes) -> asyncio.StreamReader:
    r = asyncio.StreamReader()
    r.feed_data(data)
    r.feed_eof()
    return r


async def test_frames_round_trip_and_limits():
    frame = rpc.encode({"id": 1, "method": "x", "params": {"t": "é" * 10}})
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert await rpc.read_frame(_reader(frame + frame)) == {"id": 1, "method": "x", "params": {"t": "é" * 10}}
    assert await rpc.read_frame(_reader(b"")) is None
    with pytest.raises(asyncio.IncompleteReadError):
        await rpc.read_frame(_reader(frame[:7]))
    big = rpc.encode({"pad": "x" * 5000})
    r = _reader(big + frame)
    with pytest.raises(rpc.FrameTooLarge) as e:
        await rpc.read_frame(r, max_bytes=2048)  # up to 4x the limit is skipped
    assert e.value.discarded and e.value.code == P.MESSAGE_TOO_LARGE
    assert (await rpc.read_frame(r, max_bytes=2048))["id"] == 1  # still in sync
    with pytest.raises(rpc.FrameTooLarge) as e:
        await rpc.read_frame(_reader(struct.pack(">I", 2**31)), max_bytes=1024)
    assert not e.value.discarded
    bad = b"\xc1"
    r = _reader(struct.pack(">I", 1) + bad + frame)
    with pytest.raises(rpc.MalformedFrame):
        await rpc.read_frame(r)
    assert (await rpc.read_frame(r))["id"] == 1
    with pytest.raises(rpc.FrameTooLarge):
        rpc.encode({"pad": "x" * 5000}, max_bytes=1024)
    # two msgpack objects in one frame is malformed, not silently half-read
    two = msgpack.packb(1) + msgpack.packb(2)
    with pytest.raises(rpc.MalformedFrame):
        await rpc.read_frame(_reader(struct.pack(">I", len(two)) + two))


def test_settings_file_is_checked(tmp_path):
    f = tmp_path / "daemon.toml"
    f.write_text("idle_unload_s = 60\nidle-exit-s = 0\n")
    s = load_settings(f, tcp_port=None)
    assert s.idle_unload_s == 60.0 and s.idle_exit_s == 0
    assert load_settings(f, idle_exit_s=5.0).idle_exit_s == 5.0
    for text, key in (("idle_exit = 1\n", "idle_exit"), ("idle_exit_s = \"soon\"\n", "idle_exit_s"),
                      ("tcp_port = 70000\n", "tcp_port"), ("idle_unload_s = -1\n", "idle_unload_s"),
                      ("log_level = \"LOUD\"\n", "log_level"), ("idle_exit_s = true\n", "idle_exit_s")):
        f.write_text(text)
        with pytest.raises(SettingsError) as e:
            load_settings(f)
        assert str(f) in str(e.value) and key in str(e.value)


def test_runtime_dir_resolution_and_checks(tmp_path, monkeypatch):
    monkeypatch.delenv("STORYTRANSFORMER_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert Paths.resolve().dir == tmp_path / "storytransformer"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    assert Paths.resolve().dir.name == f"storytransformer-{os.getuid()}"
    monkeypatch.setenv("STORYTRANSFORMER_RUNTIME_DIR", str(tmp_path / "override"))
    assert Paths.resolve().dir == tmp_path / "override"
    d = ensure_private_dir(tmp_path / "override")
    assert os.stat(d).st_mode & 0o777 == 0o700
    os.chmod(d, 0o750)
    with pytest.raises(RuntimeDirError, match="chmod 700"):
        ensure_private_dir(d)
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(RuntimeDirError, match="not a plain directory"):
        ensure_private_dir(link)
    with pytest.raises(RuntimeDirError, match="longer than"):
        Paths.resolve(tmp_path / ("x" * MAX_SOCKET_PATH))


def test_finding_wire_round_trip():
    from storytransformer.findings import Finding, Fix, Related, Severity
    from storytransformer.story import Position, Range

    rng = Range(Position(2, 0, 0), Position(2, 5, 6))
    f = Finding("ST101", "well-formed", Severity.WARNING, "msg", "/a.txt", rng, "a-1",
                (Related("/b.txt", rng, "b-2", "same"),), Fix.replace("fix it", rng, "new"), {"k": (1, 2)})
    wire = finding_to_wire(f)
    assert msgpack.unpackb(msgpack.packb(wire), raw=False) == wire
    back = finding_from_wire(wire)
    assert back == f and back.data == {"k": [1, 2]}


def test_root_filters_story_files(tmp_path):
    from storytransformer_server.daemon.workspaces import Root

    (tmp_path / "a.txt").write_text("As a user, I want to log in, so that I am known.\n")
    root = Root.open(str(tmp_path))
    assert root.wants(str(tmp_path / "docs" / "b.md"))
    assert not root.wants(str(tmp_path / "node_modules" / "x.txt"))
    assert not root.wants(str(tmp_path / ".venv" / "lib" / "x.txt"))
    assert not root.wants(str(tmp_path / "image.png"))
    assert not root.wants(str(tmp_path.parent / "elsewhere.txt"))
    assert root.is_config_file(str(tmp_path / "pyproject.toml"))


async def test_watcher_coalesces_a_burst_into_few_batches(tmp_path):
    batches: list[tuple[set, bool]] = []
    done = asyncio.Event()

    async def on_batch(root, paths, rescan):
        batches.append((set(paths), rescan))
        if any(p.endswith("f0499.txt") for p in paths):
            done.set()

    w = RootWatcher(on_batch, debounce_s=0.1, max_batch_delay_s=0.5)
    w.start()
    try:
        w.watch(str(tmp_path))
        (tmp_path / ".git").mkdir()
        (tmp_path / ".git" / "HEAD").write_text("ref")
        for i in range(500):
            (tmp_path / f"f{i:04d}.txt").write_text("x")
        await asyncio.wait_for(done.wait(), 30)
        seen = set().union(*(p for p, _ in batches))
        assert {str(tmp_path / f"f{i:04d}.txt") for i in range(500)} <= seen
        assert not any(".git" in p for p in seen)
        assert len(batches) <= 20, f"{len(batches)} batches for one burst"
    finally:
        await w.stop()


async def test_an_inotify_overflow_rescans_every_watched_root(tmp_path):
    import logging

    batches: list[tuple[str, bool]] = []
    done = asyncio.Event()

    async def on_batch(root, paths, rescan):
        batches.append((root, rescan))
        done.set()

    w = RootWatcher(on_batch, debounce_s=0.05, max_batch_delay_s=0.2)
    w.start()
    try:
        w.watch(str(tmp_path))
        # what watchdog logs when the kernel drops events (it has no other signal for it)
        logging.getLogger("watchdog.observers.inotify_c").warning("Inotify queue overflowed; filesystem events were lost")
        await asyncio.wait_for(done.wait(), 10)
        assert (str(tmp_path), True) in batches
    finally:
        await w.stop()


def test_pre_encoded_values_decode_like_plain_ones():
    findings = [{"code": "ST101", "range": {"start": {"line": 0}}, "related": [], "message": "é"}] * 3
    message = {"id": 9, "result": {"path": "/p", "findings": rpc.Packed(findings), "version": None}}
    assert rpc.unpack(rpc.pack(message)) == {"id": 9, "result": {"path": "/p", "findings": findings, "version": None}}
    assert rpc.unpack(rpc.pack({"id": 1, "result": [1, {"a": 2}]})) == {"id": 1, "result": [1, {"a": 2}]}


def test_settings_take_fractions_and_whole_numbers(tmp_path):
    f = tmp_path / "daemon.toml"
    f.write_text("idle_unload_s = 90.5\nidle_exit_s = 600\ndebounce_s = 0\nmax_message_bytes = 4096\n")
    s = load_settings(f)
    assert (s.idle_unload_s, s.idle_exit_s, s.debounce_s, s.max_message_bytes) == (90.5, 600.0, 0.0, 4096)
    f.write_text("max_message_bytes = 4096.5\n")
    with pytest.raises(SettingsError, match="max_message_bytes"):
        load_settings(f)


def test_semantic_duplicates_the_model_took_back_leave_the_daemons_findings_by_the_stories_words(tmp_path):
    """The daemon keeps the pairs the judge model took back by the stories' words: the semantic duplicate
    between them is left out of a findings reply (the other story it names stays, and the message says only
    it); a reworded story is judged again, so its pair comes back."""
    from storytransformer.findings import Severity
    from storytransformer.similarity.classify import Relation
    from storytransformer.similarity.workspace_findings import relation_finding
    from storytransformer_server.daemon.model_checks import Kept, ModelChecks, key_of
    from storytransformer_server.daemon.workspaces import Root

    text = ("As a member, I want to renew a borrowed book online.\n"
            "As a reader, I want to extend my loan from home.\n"
            "As a patron, I want to renew my loans on the website.\n")
    (tmp_path / "loans.txt").write_text(text, "utf-8")
    root = Root.open(str(tmp_path))
    path = str(tmp_path / "loans.txt")
    a, b, c = root.workspace.files[path].stories
    checks = ModelChecks(host=None, engine=None, similarity=None)
    checks.kept[root.path] = Kept(dropped={frozenset((key_of(a), key_of(b)))})

    def wire_of(story, others):
        return finding_to_wire(relation_finding(story, Relation.DUPLICATE, others, {"ST603": Severity.WARNING},
                                                frozenset(), str(tmp_path)))

    wire = [wire_of(a, [(b, 0.91), (c, 0.84)]), wire_of(b, [(a, 0.91)]), wire_of(c, [(a, 0.84)])]
    kept = checks.without_taken_back(root, path, wire)
    assert [(d["range"]["start"]["line"], [r["range"]["start"]["line"] for r in d["related"]]) for d in kept] == \
        [(0, [2]), (2, [0])]
    assert kept[0]["message"].startswith("Semantic duplicate of loans.txt:3 (0.84);")

    root.set_overlay(path, "As a member, I want to print my loan history.\n" + text.split("\n", 1)[1], 1, client=1)
    a2, b2, c2 = root.workspace.files[path].stories
    wire = [wire_of(a2, [(b2, 0.6)]), wire_of(b2, [(a2, 0.6)])]
    assert len(checks.without_taken_back(root, path, wire)) == 2  # reworded: no longer the pair taken back


def test_kept_model_findings_follow_a_partner_in_another_file_and_read_only_the_files_they_name(tmp_path, monkeypatch):
    """A kept finding whose partner is in another file: found while both keep their words, gone once the partner
    is reworded; the stories of files it does not name are never read for it."""
    from storytransformer.findings import Severity
    from storytransformer.similarity.classify import Relation
    from storytransformer.similarity.workspace_findings import relation_finding
    from storytransformer_server.daemon.model_checks import Kept, ModelChecks, key_of
    from storytransformer_server.daemon.workspaces import Root

    (tmp_path / "a.txt").write_text("As a member, I want to renew a borrowed book online.\n", "utf-8")
    (tmp_path / "b.txt").write_text("As a caretaker, I want to order bulbs.\nAs a reader, I want to extend my loan.\n",
                                    "utf-8")
    (tmp_path / "c.txt").write_text("As a visitor, I want to see the opening hours.\n", "utf-8")
    root = Root.open(str(tmp_path))
    pa, pb, pc = (str(tmp_path / n) for n in ("a.txt", "b.txt", "c.txt"))
    (a,), (_, b) = root.workspace.files[pa].stories, root.workspace.files[pb].stories
    f = relation_finding(a, Relation.DUPLICATE, [(b, 0.9)], {"ST603": Severity.WARNING}, frozenset(), str(tmp_path))
    checks = ModelChecks(host=None, engine=None, similarity=None)
    checks.kept[root.path] = Kept(findings=[(f, key_of(a), (key_of(b),))])

    monkeypatch.setattr(type(root.workspace), "stories", lambda ws: pytest.fail("every story of the root was read"))
    found = checks.findings_for(root, pa)
    assert [(x.range.start.line, [(r.file, r.range.start.line) for r in x.related]) for x in found] == [(0, [(pb, 1)])]
    assert checks.findings_for(root, pc) == []

    root.set_overlay(pb, "As a caretaker, I want to order bulbs.\nAs a reader, I want to print my loan history.\n", 1,
                     client=1)
    assert checks.findings_for(root, pa) == []  # the partner was reworded


def test_a_model_check_has_the_deadline_of_its_own_time_budget_and_other_requests_the_daemons():
    from storytransformer_server.daemon.service import Service

    service = Service.__new__(Service)  # deadline_for reads no state
    assert service.deadline_for("findings", {}, 120.0) == 120.0
    assert service.deadline_for("model/check", {"seconds": 3600}, 120.0) == 3600 + Service.MODEL_CHECK_SLACK_S
    assert service.deadline_for("model/check", {}, 120.0) == 300 + Service.MODEL_CHECK_SLACK_S
    assert service.deadline_for("model/check", {"seconds": 1}, 600.0) == 600.0  # never shorter than the daemon's
    assert service.deadline_for("model/check", {"seconds": "soon"}, 120.0) == 300 + Service.MODEL_CHECK_SLACK_S


@pytest.mark.parametrize("setting, status, asks", [
    ("auto", {"backend": "local", "device": "cuda:0"}, True),
    ("auto", {"backend": "remote", "device": ""}, True),
    ("auto", {"backend": "local", "device": "cpu"}, False),
    ("on", {"backend": "local", "device": "cpu"}, True),
    ("off", {"backend": "local", "device": "cuda:0"}, False),
])
def test_an_edits_near_pairs_are_asked_by_default_only_where_a_question_is_cheap(setting, status, asks):
    """engine.model_checks_on_edit: "auto" asks after edits on a GPU or a remote engine, not on the CPU."""
    from types import SimpleNamespace

    from storytransformer.config import Config
    from storytransformer_server.daemon.model_checks import ModelChecks

    config = Config()
    config.engine = dataclasses.replace(config.engine, model_checks_on_edit=setting)
    checks = ModelChecks(host=None, engine=SimpleNamespace(status=lambda: status), similarity=None)
    assert checks._on_edit(config) is asks


def test_model_checks_on_edit_takes_only_its_values():
    from storytransformer.config import ConfigError, from_table

    with pytest.raises(ConfigError, match="model_checks_on_edit"):
        from_table({"engine": {"model_checks_on_edit": "always"}}, ".storytransformer.toml")
