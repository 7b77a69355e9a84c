"""``workspace/executeCommand``: re-check the workspace, merge stories, load/unload the model, engine status,
run the model checks.

The command names and the ``storytransformer/engineStatus`` notification are
what the VS Code extension calls and listens for; keep them stable.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from lsprotocol import types

from . import scan
from .code_actions import keeping_merge, merge_edit
from .convert import uri_to_path
from .model_adapter import ModelUnavailable, failure_message, failure_reason, log_failure

if TYPE_CHECKING:
    from .server_context import ServerContext

log = logging.getLogger(__name__)

RECHECK = "storytransformer.recheckWorkspace"
LOAD_MODEL = "storytransformer.loadModel"
UNLOAD_MODEL = "storytransformer.unloadModel"
MERGE = "storytransformer.mergeStories"
ENGINE_STATUS = "storytransformer.engineStatus"
RUN_MODEL_CHECKS = "storytransformer.runModelChecks"
COMMANDS = (RECHECK, LOAD_MODEL, UNLOAD_MODEL, MERGE, ENGINE_STATUS, RUN_MODEL_CHECKS)
MODEL_CHECK_SLACK_S = 60.0  # beyond the checks' own time limit: finding the near pairs, loading the model


def story_refs(args: tuple) -> list[tuple[str, int]]:
    """``[{uri, line}, ...]`` (or that list wrapped in one argument) -> (uri, line) pairs; bad entries raise."""
    items: list[Any] = list(args)
    if len(items) == 1 and isinstance(items[0], list):
        items = items[0]
    refs = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("uri"), str)
                and isinstance(item.get("line"), int) and not isinstance(item.get("line"), bool)
                and item["line"] >= 0):
            raise ValueError(f"argument {i + 1} must be {{uri: string, line: integer >= 0}}, not {item!r}")
        refs.append((item["uri"], item["line"]))
    return refs


def register(server: "ServerContext") -> None:
    @server.command(RECHECK)
    async def recheck(*args) -> dict:
        server.diagnostics.scanned.clear()
        await scan.scan_workspace(server)
        pubs = list(server.diagnostics.published.values())
        return {"files": len(pubs), "findings": sum(len(p.diagnostics) for p in pubs)}

    @server.command(LOAD_MODEL)
    async def load_model(*args) -> dict:
        async with server.progress("StoryTransformer", "loading the model"):
            roots = server.core.roots
            status = await server.model.load(roots[0] if roots else None, server.options.engine.to_engine_config())
        if status.state == "unavailable":
            server.show(f"model unavailable: {status.reason}", types.MessageType.Warning)
        return status.to_json()

    @server.command(UNLOAD_MODEL)
    async def unload_model(*args) -> dict:
        return (await server.model.unload()).to_json()

    @server.command(ENGINE_STATUS)
    async def engine_status(*args) -> dict:
        status = await server.model.refresh_status(spawn=False)
        server.send_engine_status(status)
        return status.to_json()

    @server.command(RUN_MODEL_CHECKS)
    async def run_model_checks(*args) -> dict:
        """The model checks (ST606 and the other model rules) on every workspace folder in turn, by the
        daemon's resident model, within one time budget; optional argument ``{max_questions, seconds,
        thresholds}`` (thresholds: {code: P(yes)}, for a model whose own were measured). Their findings show
        with the semantic ones in the open documents until the stories they are about are reworded."""
        from storytransformer.model_checking import DEFAULT_QUESTIONS, DEFAULT_SECONDS

        roots = server.core.roots or [os.path.normpath(os.path.abspath(r)) for r in server.roots()]  # before the scan
        if not roots:
            server.show("Run Model Checks: open a folder first (the checks look across its stories)",
                        types.MessageType.Warning)
            return {"ran": False, "reason": "no workspace folder"}
        limits = args[0] if args and isinstance(args[0], dict) else {}
        questions = int(limits.get("max_questions", DEFAULT_QUESTIONS))
        seconds = float(limits.get("seconds", DEFAULT_SECONDS))
        started = time.monotonic()
        replies: list[dict] = []
        async with server.progress("StoryTransformer", "model checks") as report:
            try:
                # The open documents' unsaved text: the model is asked about the stories the user sees.
                await server.model.share(roots, [(path, version, text)
                                                 for path, (version, text) in list(server.core.overlays.items())])
                await server.model.ensure_loaded(roots[0], report)
                for root in roots:
                    left = seconds - (time.monotonic() - started)
                    asked = sum(r.get("asked", 0) + r.get("asked_again", 0) for r in replies)
                    if left <= 0 or asked >= questions:
                        replies.append({"root": root, "ran": False, "notes": [
                            {"level": "warning", "message": f"{root}: not asked (the budget was spent)"}]})
                        continue
                    report(f"asking the model about {os.path.basename(root) or root} (near pairs first)", None)
                    params = {"path": root, "max_questions": questions - asked, "seconds": left}
                    if isinstance(limits.get("thresholds"), dict):
                        params["thresholds"] = limits["thresholds"]
                    reply = await server.model.request("model/check", params, timeout=left + MODEL_CHECK_SLACK_S)
                    replies.append({"root": root, **(reply if isinstance(reply, dict) else {})})
            except ModelUnavailable as e:
                log_failure("Run Model Checks", e)
                server.show(failure_message("Run Model Checks", e), types.MessageType.Warning)
                return {"ran": False, "reason": failure_reason(e), "roots": replies}
        reply = combined(replies)
        for note in reply["notes"]:
            log.info("model checks: %s: %s", note.get("level"), note.get("message"))
        summary = model_check_summary(reply)
        server.show(summary, types.MessageType.Info if reply.get("ran") else types.MessageType.Warning)
        server.semantic.refresh_open()
        return {**reply, "summary": summary}

    @server.command(MERGE)
    async def merge(*args) -> dict:
        try:
            refs = story_refs(args)
        except ValueError as e:
            server.show(f"Merge Stories: {e}", types.MessageType.Error)
            return {"applied": False, "reason": str(e)}
        # Each story with the URI of the document it was found in, read from the document's current text.
        found_in: list[tuple[str, object]] = []
        for uri, line in refs:
            path = uri_to_path(uri)
            if path is None:
                continue
            if server.open_document(uri) is not None:
                await server.diagnostics.ensure_current(path)
            story = await server.core.run(server.core.story_at, path, line)
            if story is not None and all(story is not s and story != s for _, s in found_in):
                found_in.append((uri, story))
        if len(found_in) < 2:
            reason = "select at least two different stories to merge"
            server.show(f"Merge Stories: {reason}", types.MessageType.Warning)
            return {"applied": False, "reason": reason}
        stories = [s for _, s in found_in]
        versions = {u: server.core.core_version.get(s.file) for u, s in found_in}
        try:
            texts = await server.propose("propose/merge", {"stories": [{"file": s.file, "id": s.id} for s in stories]},
                                         [s.file for s in stories])
        except ModelUnavailable as e:
            log_failure("Merge Stories", e)
            server.show(failure_message("Merge Stories", e), types.MessageType.Warning)
            return {"applied": False, "reason": failure_reason(e)}
        merged = keeping_merge(server, "Merge Stories", texts, stories)
        if merged is None:
            from storytransformer.similarity.needs import keeps_every_need

            reason = keeps_every_need(texts[0], stories).reason
            return {"applied": False, "text": texts[0], "reason": f"refused: {reason}"}
        if not await confirm_merge(server, merged, len(stories)):
            return {"applied": False, "text": merged, "reason": "not confirmed"}
        edit = merge_edit(server, found_in, versions, merged)
        result = await server.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=edit, label="Merge stories"))
        return {"applied": bool(result.applied), "text": merged, "reason": result.failure_reason}


APPLY = "Apply merge"


def combined(replies: list[dict]) -> dict:
    """The daemon's ``model/check`` replies for several workspace folders as one (sums; the first model; the
    first reason to stop), with each folder's own under ``roots``."""
    out: dict = {"ran": any(r.get("ran") for r in replies), "files": {}, "notes": [], "stopped": None, "model": None,
                 "roots": replies}
    for key in ("findings", "asked", "asked_again", "planned", "pairs", "taken_back", "seconds"):
        out[key] = sum(r.get(key) or 0 for r in replies)
    for r in replies:
        out["files"].update(r.get("files") or {})
        out["notes"] += [n for n in r.get("notes") or () if isinstance(n, dict)]
        out["model"] = out["model"] or r.get("model")
    out["stopped"] = next((r["stopped"] for r in replies if r.get("stopped")), None) or \
        ("budget" if out["ran"] and any(not r.get("ran") for r in replies) else None)
    out["seconds"] = round(out["seconds"], 1)
    return out


def model_check_summary(reply: dict) -> str:
    """One line for the user: what the model found, what it took back, and where it stopped if it did."""
    if not reply.get("ran"):
        notes = [n.get("message", "") for n in reply.get("notes", ()) if isinstance(n, dict)]
        return "Model checks did not run: " + ("; ".join(notes) or "no reason given")
    found, files = reply.get("findings", 0), len(reply.get("files") or {})
    line = (f"Model checks ({reply.get('model')}): {found} finding{'s' if found != 1 else ''}"
            + (f" in {files} file{'s' if files != 1 else ''}" if found else "")
            + f"; {reply.get('asked', 0)} of {reply.get('planned', 0)} questions asked"
            + (f" ({reply['asked_again']} pairs again the other way round)" if reply.get("asked_again") else "")
            + f" in {reply.get('seconds', 0):g} s")
    if reply.get("taken_back"):
        line += f"; {reply['taken_back']} semantic duplicate pair(s) taken back"
    if reply.get("stopped"):
        line += f" (stopped: {reply['stopped']}; the rest was not asked)"
    return line


async def confirm_merge(server: "ServerContext", text: str, count: int) -> bool:
    """Show the merged story and apply it only when the user says so (``window/showMessageRequest``)."""
    try:
        choice = await server.window_show_message_request_async(types.ShowMessageRequestParams(
            type=types.MessageType.Info,
            message=f"StoryTransformer: replace the {count} selected stories with this one?\n\n{text}",
            actions=[types.MessageActionItem(title=APPLY), types.MessageActionItem(title="Cancel")]))
    except Exception:
        log.warning("the client did not answer the merge confirmation", exc_info=True)
        return False
    return choice is not None and choice.title == APPLY
