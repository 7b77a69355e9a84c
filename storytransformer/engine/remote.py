"""The remote backend: a model on an OpenAI-compatible server (vLLM, text-generation-inference, the llama.cpp
server, Ollama, ``transformers serve``): ``GET /v1/models``, ``POST /v1/chat/completions``,
and ``POST /v1/completions`` with ``echo`` + ``logprobs`` for scoring where the server offers it.

The proposer (:mod:`.proposer`) is the same as for a local model: same candidates, same
validator; only the model calls differ. The API key is read from the environment variable named by
``engine.remote_api_key_env`` and never stored.
"""

from __future__ import annotations

import logging
import os
import random
import time
from typing import Sequence

from ..config import Config
from .backend import STOP_TEXT
from .contract import (CancelToken, Deadline, DeadlineExceeded, EngineConfigError, EngineError, EngineStatus,
                   EngineUnavailable, Score, Unsupported, checkpoint)
from .prompts import plain
from .proposer import Proposer

log = logging.getLogger("storytransformer.engine")

RETRY_STATUS = {408, 429, 500, 502, 503, 504}
BACKOFF_S = 0.5


def RemoteEngine(config: Config) -> Proposer:  # noqa: N802 - the name callers have always used
    """A proposer over an OpenAI-compatible server (``engine.remote_url``)."""
    return Proposer(config, RemoteBackend(config))


class RemoteBackend:
    """HTTP calls with timeouts, retries and backoff; no model in this process."""

    def __init__(self, config: Config):
        self.config = config
        url = config.engine.remote_url.rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise EngineConfigError("remote_url", f"must be an http(s) URL, not {config.engine.remote_url!r}")
        self.base = url if url.endswith("/v1") else url + "/v1"
        self.model_name = config.engine.remote_model
        self._client = None
        self._can_score: bool | None = None
        self._status = EngineStatus(backend="remote", source="remote", model=self.model_name or "(server default)",
                                    device=self.base, dtype="(server)", attention="(server)", cache_dir="")

    # -- lifecycle -----------------------------------------------------------------------
    def _headers(self) -> dict:
        env = self.config.engine.remote_api_key_env
        key = os.environ.get(env, "") if env else ""
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _http(self):
        if self._client is None:
            import httpx

            self._client = httpx.Client(headers=self._headers())
        return self._client

    def load(self, *, token: CancelToken | None = None, deadline: Deadline | None = None) -> EngineStatus:
        st = self._status
        t0 = time.perf_counter()
        st.state = "loading"
        try:
            data = self._request("GET", "/models", None, token, deadline)
            ids = [m.get("id", "") for m in data.get("data", [])]
            if not ids:
                raise EngineUnavailable(f"{self.base}/models lists no model")
            if not self.model_name:
                self.model_name = ids[0]
            elif self.model_name not in ids:
                raise EngineConfigError("remote_model", f"{self.model_name!r} is not served by {self.base} "
                                        f"(it serves: {', '.join(ids[:5])})")
        except BaseException as e:
            st.state, st.error = "failed", str(e)
            raise
        st.model, st.state, st.error, st.loaded_from = self.model_name, "ready", "", "remote"
        st.load_seconds = round(time.perf_counter() - t0, 3)
        return st

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self._status.state = "unloaded"

    def status(self) -> EngineStatus:
        return self._status

    @property
    def loaded(self) -> bool:
        return self._status.state == "ready"

    def render(self, messages: list[dict]) -> str:
        """The prompt as plain text (the server's chat template is not known here)."""
        return plain(messages)

    def count_tokens(self, text: str) -> int:
        """About four characters a token (the server's tokenizer is not known here)."""
        return max(1, (len(text) + 3) // 4) if text else 0

    def context_window(self) -> int:
        """Unknown for a remote server: a common 4096."""
        return 4096

    def _ensure(self, token, deadline) -> None:
        if self._status.state != "ready":
            self.load(token=token, deadline=deadline)

    # -- HTTP with timeouts, retries and backoff --------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None, token, deadline) -> dict:
        import httpx

        attempts = max(0, self.config.engine.retries) + 1
        last: Exception | None = None
        for attempt in range(attempts):
            checkpoint(token, deadline)
            timeout = self.config.engine.timeout_s
            remaining = deadline.remaining() if deadline else None
            if remaining is not None:
                timeout = max(0.05, min(timeout, remaining))
            try:
                r = self._http().request(method, self.base + path, json=body, timeout=timeout)
                if r.status_code in RETRY_STATUS:
                    last = EngineUnavailable(f"{self.base}{path}: HTTP {r.status_code}: {r.text[:200]}")
                elif r.status_code >= 400:
                    raise EngineError(f"{self.base}{path}: HTTP {r.status_code}: {r.text[:300]}")
                else:
                    try:
                        return r.json()
                    except ValueError as e:
                        raise EngineError(f"{self.base}{path}: the answer is not JSON: {r.text[:200]!r}") from e
            except httpx.TimeoutException as e:
                if deadline is not None and deadline.expired:
                    raise DeadlineExceeded(f"{self.base}{path}: no answer before the deadline") from e
                last = EngineUnavailable(f"{self.base}{path}: no answer within {timeout:.1f} s")
            except httpx.TransportError as e:
                last = EngineUnavailable(f"cannot reach {self.base}: {e}")
            if attempt + 1 < attempts:
                pause = BACKOFF_S * (2 ** attempt) * (0.5 + random.random())
                remaining = deadline.remaining() if deadline else None
                if remaining is not None and remaining <= pause:
                    break
                _sleep(pause, token)
        raise last or EngineUnavailable(f"{self.base}{path}: no answer")

    # -- model calls ---------------------------------------------------------------------------------
    def generate(self, messages: list[dict], *, max_new_tokens: int | None = None, allowed_text: str = "",
                 token: CancelToken | None = None, deadline: Deadline | None = None,
                 stop: Sequence[str] = STOP_TEXT) -> str:
        """The server's greedy answer (``allowed_text`` is not enforced remotely: the validator is)."""
        self._ensure(token, deadline)
        body = {"model": self.model_name, "messages": messages, "temperature": 0.0,
                "max_tokens": max_new_tokens or self.config.engine.max_new_tokens}
        if stop:
            body["stop"] = ["\n\n"] if tuple(stop) == STOP_TEXT else list(stop)[:4]
        data = self._request("POST", "/chat/completions", body, token, deadline)
        try:
            return (data["choices"][0]["message"]["content"] or "").strip()
        except (KeyError, IndexError, TypeError) as e:
            raise EngineError(f"{self.base}/chat/completions: unexpected answer {str(data)[:200]}") from e

    def score(self, texts: Sequence[str], *, context: str = "", token: CancelToken | None = None,
              deadline: Deadline | None = None) -> list[Score]:
        """Prompt log-probabilities via ``/v1/completions`` with ``echo`` (vLLM and the llama.cpp
        server return them; a server that does not raises :class:`Unsupported`)."""
        self._ensure(token, deadline)
        if self._can_score is False:
            raise Unsupported(f"{self.base} returns no prompt log-probabilities")
        out = []
        for t in texts:
            body = {"model": self.model_name, "prompt": context + t, "max_tokens": 1, "echo": True,
                    "logprobs": 0, "temperature": 0.0}
            data = self._request("POST", "/completions", body, token, deadline)
            try:
                lp = data["choices"][0]["logprobs"]
                tokens, logprobs, offsets = lp["tokens"], lp["token_logprobs"], lp["text_offset"]
            except (KeyError, IndexError, TypeError):
                self._can_score = False
                raise Unsupported(f"{self.base} returns no prompt log-probabilities") from None
            picked = [v for v, off in zip(logprobs, offsets) if off >= len(context) and off < len(context + t) and v is not None]
            self._can_score = True
            out.append(Score(float(sum(picked)), len(picked)))
        return out


def _sleep(seconds: float, token: CancelToken | None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if token is not None:
            token.raise_if_cancelled()
        time.sleep(min(0.05, end - time.monotonic()) if end > time.monotonic() else 0)
