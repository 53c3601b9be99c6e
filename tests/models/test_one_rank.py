"""The plugin's model refuses sharded launches (--tp/--pp/--ep > 1) with a clear start-up error."""

import pytest
from sglang.srt.distributed import parallel_state

from dsv32_plugin.models.deepseek_v32 import require_one_rank

GETTERS = {
    "--tp": "get_tensor_model_parallel_world_size",
    "--pp": "get_pipeline_model_parallel_world_size",
    "--ep": "get_moe_expert_parallel_world_size",
}


def _world(monkeypatch, **sizes):
    for flag, getter in GETTERS.items():
        monkeypatch.setattr(parallel_state, getter, lambda size=sizes.get(flag[2:], 1): size)


def test_one_rank_is_accepted(monkeypatch):
    _world(monkeypatch)
    require_one_rank()


@pytest.mark.parametrize("flag", ["tp", "pp", "ep"])
def test_sharded_launch_is_refused_naming_the_flag_and_the_way_out(monkeypatch, flag):
    _world(monkeypatch, **{flag: 8})
    with pytest.raises(NotImplementedError, match=rf"'--{flag}': 8.*SGLANG_PLUGINS"):
        require_one_rank()
