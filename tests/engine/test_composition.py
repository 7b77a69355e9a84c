"""The engine as composition: one proposer over one backend (transformers, fast path, remote, none),
the reasons it gives when nothing passes, and the throughput estimate timing the engine itself."""

from __future__ import annotations

import pytest

from storytransformer.config import Config, EngineConfig
from storytransformer.engine import create_engine
from storytransformer.engine.backend import Backend, NoModel
from storytransformer.engine.contract import Unsupported
from storytransformer.engine.fast_backend import FastPathBackend
from storytransformer.engine.proposer import Outcome, Proposer, why_none
from storytransformer.engine.remote import RemoteBackend
from storytransformer.engine.transformers_backend import TransformersBackend
from storytransformer.formats import read_source


def stories(*lines: str):
    return read_source("backlog.txt", "\n".join(lines) + "\n").stories


def test_the_configuration_picks_the_backend_and_the_proposer_stays_the_same():
    fast = create_engine(Config(engine=EngineConfig(fast_path="auto")))
    plain = create_engine(Config(engine=EngineConfig(fast_path="off")))
    remote = create_engine(Config(engine=EngineConfig(remote_url="http://127.0.0.1:9/v1")))
    assert type(fast) is type(plain) is type(remote) is Proposer
    assert isinstance(fast.backend, FastPathBackend) and isinstance(fast.backend.inner, TransformersBackend)
    assert isinstance(plain.backend, TransformersBackend)
    assert isinstance(remote.backend, RemoteBackend) and remote.status().backend == "remote"
    for backend in (fast.backend, plain.backend, remote.backend, NoModel()):
        assert isinstance(backend, Backend)
    assert not fast.loaded and not plain.loaded and not remote.loaded  # making an engine loads nothing


def test_without_a_model_proposals_are_the_deterministic_ones_unranked():
    proposer = Proposer(Config(engine=EngineConfig(generate=True)))  # generation asked for, no model to do it
    a, b = stories("As a visitor, I want to search events, so that I find concerts.",
                   "As a visitor, I want to search events by date.")
    found = proposer.propose_merge([a, b])
    assert [p.text for p in found] == ["As a visitor, I want to search events by date, so that I find concerts."]
    assert found[0].score is None and found[0].origin == "template"
    with pytest.raises(Unsupported):
        proposer.score(["As a visitor, I want to search events."])


def test_a_merge_that_loses_a_need_says_which_and_whose():
    a, b = stories("As a user, I want to log in.", "As an admin, I want to log in and log out.")
    outcome = Proposer(Config(engine=EngineConfig(generate=False))).propose("merge", [a, b])
    assert not outcome.accepted and len(outcome.rejected) == 2
    assert outcome.reason.startswith("no proposal kept every part of both stories (")
    assert "backlog.txt:2" in outcome.reason and "log out" in outcome.reason
    details = outcome.details()
    assert len(details) == 2 and any("ST201" in d for d in details) and all("rejected:" in d for d in details)


def test_no_candidate_at_all_is_said_too():
    (s,) = stories("As a clerk, I want to print labels.")
    outcome = Proposer(Config(engine=EngineConfig(generate=False))).propose("split", [s])
    assert outcome == Outcome("split", (), (), why_none("split", 1, ()))
    assert "no pieces joined by 'and' or 'or' that each read as an action" in outcome.reason


def test_the_daemon_translates_the_engines_typed_errors():
    from storytransformer_server.daemon import protocol as P
    from storytransformer_server.daemon.engine_adapter import translate

    from storytransformer.engine import Cancelled, DeadlineExceeded, EngineError, ModelLoadError

    assert translate(Cancelled("x")).code == P.CANCELLED
    assert translate(DeadlineExceeded("x")).code == P.DEADLINE_EXCEEDED
    assert translate(ModelLoadError("bad file")).code == P.ENGINE_UNAVAILABLE
    assert translate(Unsupported("no logprobs")).message == "no logprobs"
    assert translate(EngineError("x")).code == P.ENGINE_ERROR
    assert translate(ImportError("No module named 'torch'")).code == P.ENGINE_UNAVAILABLE


@pytest.mark.slow
def test_the_throughput_estimate_times_the_engine(engine):
    from storytransformer.report.throughput import measure

    prefill, decode = measure(engine.config, repeats=1, engine=engine)
    assert prefill > decode > 0  # a forward pass over many tokens beats one token at a time
    assert engine.loaded  # an engine it was given stays loaded


def test_stories_that_bundle_the_same_actions_merge_into_one_story_per_action():
    """No single merged story of two 'view and update' stories is atomic: the merge comes split, each
    action with its object, and a split that leaves an action without its object is not offered."""
    a, b = stories("As a user, I want to view and update the inventory of the lab.",
                   "As a user, I want to view and update the inventory of the lab, so that I can order in time.")
    outcome = Proposer(Config(engine=EngineConfig(generate=False))).propose("merge", [a, b])
    assert outcome.accepted, outcome.reason
    first = outcome.accepted[0]
    assert first.stories == ("As a user, I want to view the inventory of the lab, so that I can order in time.",
                             "As a user, I want to update the inventory of the lab, so that I can order in time.")
    assert first.grounding.accepted and "ST201" not in first.grounding.findings
    assert all(len(p.stories) != 2 or "want to view." not in p.text for p in outcome.accepted)


def test_a_merge_that_is_atomic_is_not_split():
    a, b = stories("As a visitor, I want to search events, so that I find concerts.",
                   "As a visitor, I want to search events by date.")
    outcome = Proposer(Config(engine=EngineConfig(generate=False))).propose("merge", [a, b])
    assert all(len(p.stories) == 1 for p in outcome.accepted)


def test_a_bundle_is_not_split_across_roles_that_asked_other_actions():
    """'As a user or admin, I want to delete the inventory' would give the user what only the admin asked."""
    a, b = stories("As a user, I want to view and update the inventory of the lab.",
                   "As an admin, I want to view and delete the inventory of the lab.")
    outcome = Proposer(Config(engine=EngineConfig(generate=False))).propose("merge", [a, b])
    assert all(len(p.stories) == 1 for p in outcome.accepted)
