"""pygls' protocol, hardened: UTF-16 positions always, and bad document notifications logged, not fatal."""

from __future__ import annotations

import logging
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException
from pygls.protocol import LanguageServerProtocol, lsp_method

log = logging.getLogger(__name__)


class StoryProtocol(LanguageServerProtocol):
    def structure_message(self, data):
        """A request whose params do not fit the LSP types still gets an answer (an error), so no client waits forever.

        pygls raises before it knows the request, so it logs the error and answers nothing.
        """
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id") if isinstance(data, dict) and "method" in data else None
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                log.warning("request %r (%s) with malformed params: answered with an error", msg_id, data.get("method"))
                self._send_response(msg_id, error=exc.to_response_error())
            raise

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        # The core computes UTF-16 columns once per story; every client must accept UTF-16.
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        return (yield from super().lsp_initialize(params))

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        uri = params.text_document.uri
        if unquote(uri) not in self.workspace.text_documents:
            log.warning("didChange for %s, which is not open: ignored", uri)
            return
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial) and not _valid(change.range):
                # pygls clamps positions past the end; a range that ends before it starts cannot be applied.
                log.warning("didChange for %s with an invalid range %s: change ignored", uri, change.range)
                continue
            try:
                self.workspace.update_text_document(params.text_document, change)
            except Exception:
                log.exception("cannot apply a change to %s", uri)
        self.workspace.text_documents[unquote(uri)].version = params.text_document.version
        return (yield from self._user(types.TEXT_DOCUMENT_DID_CHANGE, params))

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        if unquote(params.text_document.uri) not in self.workspace.text_documents:
            log.warning("didClose for %s, which is not open: ignored", params.text_document.uri)
            return
        return (yield from super().lsp_text_document__did_close(params))

    def _user(self, method: str, params):
        if (handler := self.fm.features.get(method)) is not None:
            yield handler, (params,), None


def _valid(r: types.Range) -> bool:
    return (r.start.line, r.start.character) <= (r.end.line, r.end.character)
