"""pygls' protocol, hardened: UTF-16 positions always, and bad document notifications logged, not fatal.

Also: lines are counted as LSP counts them (``\n``, ``\r\n``, ``\r``: the core's
:mod:`storytransformer.lines`), where pygls' documents use ``str.splitlines()`` and so
break lines at U+2028, FF and the like; requests before ``initialize`` get the LSP's
``ServerNotInitialized`` error; a ``$/cancelRequest`` whose id is not a number or a
string is ignored with a warning.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcServerNotInitialized
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.workspace import TextDocument, Workspace

from storytransformer.lines import split_lines_keepends

log = logging.getLogger(__name__)


class StoryTextDocument(TextDocument):
    """A pygls document whose lines (for positions, offsets and incremental changes) are the LSP's lines."""

    @property
    def lines(self):
        return tuple(split_lines_keepends(self.source))


class StoryWorkspace(Workspace):
    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> TextDocument:
        return StoryTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                                 sync_kind=self._sync_kind, position_codec=self._position_codec)


IGNORED = object()  # a message structure_message decided to drop
BEFORE_INITIALIZE = (types.INITIALIZE, types.EXIT)


class StoryProtocol(LanguageServerProtocol):
    def structure_message(self, data):
        """A request whose params do not fit the LSP types still gets an answer (an error), so no client waits forever.

        pygls raises before it knows the request, so it logs the error and answers nothing.
        """
        if isinstance(data, dict) and "jsonrpc" in data and data.get("method") == types.CANCEL_REQUEST:
            params = data.get("params")
            msg_id = params.get("id") if isinstance(params, dict) else None
            if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool):
                log.warning("$/cancelRequest for id %.80r, which is not a number or a string: ignored", msg_id)
                return IGNORED
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            msg_id = data.get("id") if isinstance(data, dict) and "method" in data else None
            if isinstance(msg_id, (int, str)) and not isinstance(msg_id, bool):
                log.warning("request %r (%s) with malformed params: answered with an error", msg_id, data.get("method"))
                self._send_response(msg_id, error=exc.to_response_error())
            raise

    def handle_message(self, message):
        if message is IGNORED:
            return
        method = getattr(message, "method", None)
        if self._workspace is None and isinstance(method, str) and method not in BEFORE_INITIALIZE:
            msg_id = getattr(message, "id", None)
            if msg_id is not None:
                log.warning("request %r (%s) before initialize: answered ServerNotInitialized", msg_id, method)
                self._send_response(msg_id, None, JsonRpcServerNotInitialized(
                    f"{method} before initialize").to_response_error())
            else:
                log.warning("notification %s before initialize: dropped", method)
            return
        super().handle_message(message)

    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        # The core computes UTF-16 columns once per story; every client must accept UTF-16.
        general = params.capabilities.general
        if general is not None and general.position_encodings:
            general.position_encodings = [types.PositionEncodingKind.Utf16]
        result = yield from super().lsp_initialize(params)
        if type(self._workspace) is Workspace:  # lines as LSP counts them (before any document opens)
            self._workspace.__class__ = StoryWorkspace
        return result

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
