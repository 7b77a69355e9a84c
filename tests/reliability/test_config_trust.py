"""Hostile configuration files: where settings may come from, and who decides that stories and a secret
leave the machine. Real files, real permissions, real processes and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import pty
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from storytransformer import trust
from storytransformer.config import load_config

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-value-that-must-stay-home"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user (uid 65534)")
# A story the model is asked to rewrite (a line without a role gets a placeholder skeleton, no model).
STORY = "As a manager, I want to export the monthly report fast, so that I can share it with the board.\n"


# -- helpers ------------------------------------------------------------------------------


class FakeModelServer:
    """An OpenAI-compatible stand-in that records every request (path, Authorization header, body)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _record(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n).decode("utf-8", "replace") if n else ""
                outer.requests.append({"method": self.command, "path": self.path,
                                       "authorization": self.headers.get("Authorization", ""), "body": body})

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._record()
                self._send(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

            def do_POST(self) -> None:
                self._record()
                self._send(404, {"error": {"message": "not served here"}})

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeModelServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def cli(*args: str, cwd: Path, config_dir: Path, stdin=subprocess.DEVNULL, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != trust.TRUST_ENV}
    e.update({"HF_HUB_OFFLINE": "1", trust.CONFIG_DIR_ENV: str(config_dir), **env})
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "storytransformer", *args], cwd=cwd, env=e, stdin=stdin,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch) -> Path:
    """A private user configuration directory (trust list, user settings) for this test and its processes."""
    d = tmp_path / "user-config"
    d.mkdir(mode=0o700)
    monkeypatch.setenv(trust.CONFIG_DIR_ENV, str(d))
    monkeypatch.delenv(trust.TRUST_ENV, raising=False)
    monkeypatch.setattr(trust, "POLICY", trust.Policy())
    return d


def project(base: Path, body: str, name: str = ".storytransformer.toml", git: bool = True) -> Path:
    base.mkdir(parents=True, exist_ok=True)
    if git:
        (base / ".git").mkdir(exist_ok=True)
    (base / "backlog.txt").write_text(STORY, "utf-8")
    cfg = base / name
    cfg.write_text(body, "utf-8")
    cfg.chmod(0o644)
    return cfg


def remote_body(url: str, key_env: str = "ST_TEST_SECRET") -> str:
    return f'[engine]\nremote_url = "{url}"\nremote_api_key_env = "{key_env}"\ntimeout_s = 5\nretries = 0\n'


# -- where configuration may come from ---------------------------------------------------------


def test_a_config_above_the_repository_root_is_ignored(tmp_path, config_dir):
    outer = tmp_path / "outer"
    project(outer, "max-words = 3\n", git=False)
    repo = outer / "repo"
    project(repo, "", name="unrelated.txt")
    assert load_config(start=repo).source == "<defaults>"  # the search stops at repo/.git
    r = cli("check", "--format", "json", "backlog.txt", cwd=repo, config_dir=config_dir)
    assert r.returncode in (0, 1), r.stderr
    assert "ST901" not in r.stdout  # max-words = 3 would flag the story as too long
    # Control: without the .git marker the same file is the project's configuration.
    (repo / ".git").rmdir()
    assert load_config(start=repo).max_words == 3
    r = cli("check", "--format", "json", "backlog.txt", cwd=repo, config_dir=config_dir)
    assert "ST901" in r.stdout


def test_the_servers_never_search_above_the_workspace_folder(tmp_path, config_dir):
    project(tmp_path / "outer", "max-words = 3\n", git=False)
    folder = tmp_path / "outer" / "folder"
    folder.mkdir()
    trust.set_policy(walk="workspace")
    assert load_config(start=folder).source == "<defaults>"
    trust.set_policy(walk="cli")
    assert load_config(start=folder).max_words == 3


@ROOT_ONLY
def test_a_config_owned_by_another_user_is_ignored_with_a_warning(tmp_path, config_dir):
    cfg = project(tmp_path / "proj", "max-words = 3\n")
    os.chown(cfg, 65534, -1)
    r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
    assert f"{cfg} ignored: the file is owned by" in r.stderr and "uid 65534" in r.stderr
    assert "ST901" not in r.stdout
    os.chown(cfg, 0, -1)  # control: the same file owned by the user (root) is used
    r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
    assert "ignored" not in r.stderr and "ST901" in r.stdout


def test_a_config_others_can_write_is_ignored_with_a_warning(tmp_path, config_dir):
    cfg = project(tmp_path / "proj", "max-words = 3\n")
    cfg.chmod(0o666)
    r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
    assert f"{cfg} ignored: the file is writable by everyone" in r.stderr
    assert "ST901" not in r.stdout
    cfg.chmod(0o644)
    if os.geteuid() == 0:  # group-writable, the group not the user's own: also ignored
        os.chown(cfg, -1, 65534)
        cfg.chmod(0o664)
        r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
        assert f"{cfg} ignored: the file is writable by its group" in r.stderr and "ST901" not in r.stdout
        cfg.chmod(0o644)
    # A directory anyone can write (like /tmp, sticky bit or not): whoever made the file there, it is ignored.
    cfg.parent.chmod(0o1777)
    try:
        r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
        assert "ignored: its directory" in r.stderr and "writable by everyone" in r.stderr
        assert "ST901" not in r.stdout
    finally:
        cfg.parent.chmod(0o755)
    r = cli("check", "--format", "json", "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
    assert "ignored" not in r.stderr and "ST901" in r.stdout  # control


def test_an_explicit_config_is_used_as_given(tmp_path, config_dir):
    cfg = project(tmp_path / "proj", "max-words = 3\n")
    cfg.chmod(0o666)
    r = cli("check", "--format", "json", "--config", str(cfg), "backlog.txt", cwd=cfg.parent, config_dir=config_dir)
    assert "ignored" not in r.stderr and "ST901" in r.stdout


def test_user_settings_are_the_base_and_the_project_file_wins(tmp_path, config_dir):
    (config_dir / "config.toml").write_text("max-words = 3\nignore = ['ST801']\n")
    repo = tmp_path / "proj"
    project(repo, "", name="unrelated.txt")
    cfg = load_config(start=repo)
    assert cfg.max_words == 3 and cfg.ignore == ["ST801"]
    (repo / ".storytransformer.toml").write_text("max_words = 30\n")
    cfg = load_config(start=repo)
    assert cfg.max_words == 30 and cfg.ignore == ["ST801"]


# -- remote engine settings need the user's trust ------------------------------------------------


def test_untrusted_remote_settings_send_nothing_and_config_trust_allows_them(tmp_path, config_dir):
    with FakeModelServer() as server:
        cfg = project(tmp_path / "proj", remote_body(server.url))
        repo = cfg.parent
        env = {"ST_TEST_SECRET": SECRET}
        r = cli("suggest", "rewrite", "backlog.txt:1", "--timeout", "20", cwd=repo, config_dir=config_dir, **env)
        assert r.returncode == 2, r.stderr
        assert "not trusted" in r.stderr and f"storytransformer config trust {cfg}" in r.stderr
        assert SECRET not in r.stderr + r.stdout
        assert server.requests == []  # nothing reached the server: no story, no key

        # A command that runs no model drops the settings quietly and works.
        r = cli("check", "backlog.txt", cwd=repo, config_dir=config_dir, **env)
        assert r.returncode in (0, 1) and server.requests == []

        r = cli("config", "trust", str(cfg), cwd=repo, config_dir=config_dir)
        assert r.returncode == 0 and server.url in r.stdout, r.stderr
        assert cfg.resolve().as_posix() in json.loads((config_dir / "trusted.json").read_text())["trusted"]
        assert (config_dir / "trusted.json").stat().st_mode & 0o077 == 0

        r = cli("suggest", "rewrite", "backlog.txt:1", "--timeout", "20", cwd=repo, config_dir=config_dir, **env)
        assert server.requests, f"the trusted server got no request: rc={r.returncode} {r.stderr}"
        assert all(q["authorization"] == f"Bearer {SECRET}" for q in server.requests)

        # A changed URL (or key variable) asks again.
        with FakeModelServer() as other:
            cfg.write_text(remote_body(other.url))
            r = cli("suggest", "rewrite", "backlog.txt:1", "--timeout", "20", cwd=repo, config_dir=config_dir, **env)
            assert r.returncode == 2 and "not trusted" in r.stderr
            assert other.requests == []
            cfg.write_text(remote_body(server.url, "ANOTHER_SECRET"))
            before = len(server.requests)
            r = cli("suggest", "rewrite", "backlog.txt:1", "--timeout", "20", cwd=repo, config_dir=config_dir,
                    ANOTHER_SECRET="other", **env)
            assert r.returncode == 2 and len(server.requests) == before


def test_pyproject_of_a_cloned_repository_cannot_pick_the_secret(tmp_path, config_dir):
    with FakeModelServer() as server:
        body = "[tool.storytransformer.engine]\n" + remote_body(server.url, "HOME").split("\n", 1)[1]
        cfg = project(tmp_path / "clone", body, name="pyproject.toml")
        r = cli("suggest", "rewrite", "backlog.txt:1", cwd=cfg.parent, config_dir=config_dir)
        assert r.returncode == 2 and str(cfg) in r.stderr and server.requests == []
        # One run may be trusted through the environment (for CI), naming the file.
        r = cli("suggest", "rewrite", "backlog.txt:1", "--timeout", "20", cwd=cfg.parent, config_dir=config_dir,
                **{trust.TRUST_ENV: str(cfg)})
        assert server.requests and server.requests[0]["authorization"] == f"Bearer {os.environ.get('HOME', '')}"


def test_the_terminal_prompt_asks_once_and_remembers(tmp_path, config_dir):
    with FakeModelServer() as server:
        cfg = project(tmp_path / "proj", remote_body(server.url))
        out, code = run_on_terminal(["suggest", "rewrite", "backlog.txt:1", "--timeout", "20"], cfg.parent, config_dir,
                                    answer="n\n", env={"ST_TEST_SECRET": SECRET})
        assert "Trust these settings" in out and code == 2 and server.requests == []
        out, code = run_on_terminal(["suggest", "rewrite", "backlog.txt:1", "--timeout", "20"], cfg.parent, config_dir,
                                    answer="y\n", env={"ST_TEST_SECRET": SECRET})
        assert "trusted" in out and server.requests
        assert server.requests[0]["authorization"] == f"Bearer {SECRET}"


def run_on_terminal(args: list[str], cwd: Path, config_dir: Path, answer: str, env: dict) -> tuple[str, int]:
    leader, follower = pty.openpty()
    e = {**os.environ, "HF_HUB_OFFLINE": "1", trust.CONFIG_DIR_ENV: str(config_dir), **env}
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])
    proc = subprocess.Popen([sys.executable, "-m", "storytransformer", *args], cwd=cwd, env=e,
                            stdin=follower, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    seen, answered, end = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < end:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            if not answered and b"[y/N]" in seen:
                os.write(leader, answer.encode())
                answered = True
            if proc.poll() is not None and not ready:
                break
        code = proc.wait(timeout=60)
    finally:
        os.close(leader)
        if proc.poll() is None:
            proc.kill()
    return seen.decode("utf-8", "replace"), code


def test_servers_drop_untrusted_remote_settings_and_pick_them_up_once_trusted(tmp_path, config_dir):
    """What the daemon does with a project's config: the engine never sees untrusted remote settings."""
    cfg_file = project(tmp_path / "proj", remote_body("http://127.0.0.1:9/v1"))
    cfg = load_config(start=cfg_file.parent)  # library policy: drop, with a notice
    assert cfg.engine.remote_url == "" and cfg.engine.remote_api_key_env == "STORYTRANSFORMER_API_KEY"
    assert cfg.remote_origin is not None and not cfg.remote_origin.trusted
    assert trust.effective(cfg).engine.remote_url == ""
    trust.add(cfg.remote_origin)
    assert trust.effective(cfg).engine.remote_url == "http://127.0.0.1:9/v1"
    assert trust.effective(cfg).engine.remote_api_key_env == "ST_TEST_SECRET"
    trust.remove(cfg.remote_origin.config)
    assert trust.effective(cfg).engine.remote_url == ""


def test_a_tampered_or_shared_trust_list_trusts_nothing(tmp_path, config_dir):
    cfg_file = project(tmp_path / "proj", remote_body("http://127.0.0.1:9/v1"))
    cfg = load_config(start=cfg_file.parent)
    trust.add(cfg.remote_origin)
    assert trust.is_trusted(cfg.remote_origin)
    (config_dir / "trusted.json").chmod(0o666)
    assert not trust.is_trusted(cfg.remote_origin)
    (config_dir / "trusted.json").chmod(0o600)
    (config_dir / "trusted.json").write_text("[" * 100_000)
    assert not trust.is_trusted(cfg.remote_origin)


# -- the daemon keys its engine by the settings --------------------------------------------------


class _FakeEngine:
    made: list["_FakeEngine"] = []

    def __init__(self, config) -> None:
        self.config, self.loaded, self.calls = config, False, []
        _FakeEngine.made.append(self)

    def load(self, token=None, deadline=None):
        self.loaded = True

    def unload(self) -> None:
        self.loaded = False

    def status(self):
        return {"state": "ready" if self.loaded else "unloaded", "model": self.config.engine.remote_url}

    def propose(self, kind, stories, findings=(), token=None, deadline=None):
        assert self.loaded and kind == "rewrite"
        self.calls.append(stories[0])
        return [self.config.engine.remote_url]


def test_the_daemon_never_runs_a_request_on_another_projects_engine(tmp_path, config_dir, monkeypatch):
    from storytransformer_server.daemon.engine_adapter import EngineAdapter

    _FakeEngine.made.clear()

    user = project(tmp_path / "a", "")  # no remote settings
    evil = project(tmp_path / "b", remote_body("http://127.0.0.1:9/v1"))
    cfg_a, cfg_b = load_config(start=user.parent), load_config(start=evil.parent)
    trust.add(cfg_b.remote_origin)  # b is trusted: its requests go to its server, a's never do
    cfg_b = load_config(start=evil.parent)

    async def scenario():
        adapter = EngineAdapter(create=_FakeEngine)
        try:
            answers = await asyncio.gather(*[adapter.propose("rewrite", [f"s{i}"], config=c)
                                             for i, c in enumerate([cfg_b, cfg_a, cfg_b, cfg_a, cfg_a])])
            return answers
        finally:
            adapter.shutdown()

    answers = asyncio.run(scenario())
    assert answers == [["http://127.0.0.1:9/v1"], [""], ["http://127.0.0.1:9/v1"], [""], [""]]
    assert len(_FakeEngine.made) >= 2
    for e in _FakeEngine.made:  # every call ran on an engine made from its own project's settings
        assert all((e.config.engine.remote_url == "") == (s in ("s1", "s3", "s4")) for s in e.calls)
    # At most one engine is loaded at a time.
    assert sum(e.loaded for e in _FakeEngine.made) <= 1


# -- the language server asks Trust / Ignore ---------------------------------------------------------

LSP_CONFIG_DIR = tempfile.mkdtemp(prefix="st-lsp-trust-")
os.chmod(LSP_CONFIG_DIR, 0o700)


def _lsp_client():
    from lsprotocol import types
    from pygls.protocol import default_converter
    from pytest_lsp import LanguageClient
    from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
    from pytest_lsp.protocol import LanguageClientProtocol

    client = LanguageClient(converter_factory=default_converter, protocol_cls=LanguageClientProtocol)
    client.asked = []  # type: ignore[attr-defined]

    def ask(ls: LanguageClient, params: types.ShowMessageRequestParams):
        ls.asked.append(params)
        return types.MessageActionItem(title="Trust")

    features = dict(DEFAULT_CLIENT_FEATURES)
    features[types.WINDOW_SHOW_MESSAGE_REQUEST] = ask
    register_lsp_features(client, features)
    return client


def _lsp_config():
    from pytest_lsp import ClientServerConfig

    env = {**os.environ, "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="st-lsp-rt-"), "HF_HUB_OFFLINE": "1",
           trust.CONFIG_DIR_ENV: LSP_CONFIG_DIR,
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "server"), os.environ.get("PYTHONPATH", "")])}
    env.pop(trust.TRUST_ENV, None)
    return ClientServerConfig(server_command=[sys.executable, "-m", "storytransformer", "lsp"],
                              client_factory=_lsp_client, server_env=env)


try:
    import pytest_lsp
    from pytest_lsp import LanguageClient

    @pytest_lsp.fixture(config=_lsp_config())
    async def lsp(lsp_client: LanguageClient):
        yield
        await lsp_client.shutdown_session()
except ImportError:  # pragma: no cover - the lsp extra is not installed
    lsp = None


@pytest.mark.skipif(lsp is None, reason="needs the lsp extra (pygls, pytest-lsp)")
async def test_the_language_server_asks_and_records_trust(lsp, tmp_path):
    from lsprotocol import types
    from pygls.uris import from_fs_path

    client = lsp  # the fixture yields nothing: the client is pytest-lsp's lsp_client
    cfg = project(tmp_path / "proj", remote_body("http://127.0.0.1:9/v1"))
    await client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=from_fs_path(str(cfg.parent)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(cfg.parent)), name="proj")],
        initialization_options={"daemon": {"spawn": False, "timeoutS": 5}}))
    end = time.monotonic() + 60
    store = Path(LSP_CONFIG_DIR) / "trusted.json"
    while time.monotonic() < end and not store.exists():
        await asyncio.sleep(0.05)
    assert client.asked, "no window/showMessageRequest"
    q = client.asked[0]
    assert str(cfg) in q.message and "http://127.0.0.1:9/v1" in q.message and "ST_TEST_SECRET" in q.message
    assert [a.title for a in q.actions] == ["Trust", "Ignore"]
    assert str(cfg.resolve()) in json.loads(store.read_text())["trusted"]
