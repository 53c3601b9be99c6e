"""Session fixtures of the end-to-end tests: one checkpoint and one ordinary server's numbers, shared."""

import pytest
from one_rank_reference import C, C_LOGPROB_START, EAGLE, PREFIX, PROMPTS, make_checkpoint, served


@pytest.fixture(scope="session")
def draftable_checkpoint(tmp_path_factory):
    """(checkpoint, its directory) of ``one_rank_reference.make_checkpoint``."""
    root = tmp_path_factory.mktemp("draftable")
    return make_checkpoint(root / "tiny"), root


@pytest.fixture(scope="session")
def one_rank_reference(draftable_checkpoint):
    """The one-rank server's numbers for A, B, D and C (``one_rank_reference.served``), checked complete."""
    results, _ = served(*draftable_checkpoint, EAGLE, {})
    assert [len(r["prompt"]) for r in results[:3]] == [len(p) - 1 for p in PROMPTS]
    reuse = results[3]
    assert len(reuse["prompt"]) >= len(C) - C_LOGPROB_START - 1 and reuse["cached"] >= PREFIX
    assert all(r["drafts"][0] > 0 for r in results)
    return results
