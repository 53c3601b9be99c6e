"""The CPU stand-in's ops: the host's Triton kernels' results (in the Triton interpreter), and clear errors."""

import os
import pathlib
import subprocess
import sys

import pytest
import torch
from pyrun import last_json

from dsv32_plugin import sgl_kernel_cpu

ORACLE = pathlib.Path(__file__).with_name("host_cpu_ops_oracle.py")


def test_ops_match_the_host_triton_kernels(tmp_path):
    proc = subprocess.run([sys.executable, str(ORACLE)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, TRITON_INTERPRET="1"))
    results = last_json(proc)
    assert len(results) == 20 and all(results.values()), results


@pytest.mark.parametrize("starts, ends, n_out", [
    pytest.param([3], [2], 0, id="start-after-end"),
    pytest.param([0], [9], 9, id="past-row-end"),
    pytest.param([0], [4], 2, id="too-few-slots"),
])
def test_assign_rejects_bad_ranges(starts, ends, n_out):
    table = torch.zeros(2, 8, dtype=torch.int32)
    with pytest.raises(ValueError):
        sgl_kernel_cpu.assign_req_to_token_pool_cpu(
            torch.tensor([1]), table, torch.tensor(starts), torch.tensor(ends), torch.arange(n_out), 8)


def test_copy_rejects_bad_locations():
    buf = torch.zeros(4, 8)
    args = (torch.tensor([buf.data_ptr()]), torch.tensor([32]))
    with pytest.raises(ValueError):
        sgl_kernel_cpu.copy_all_layer_kv_cache_cpu(*args, torch.tensor([0, 1]), torch.tensor([2]))
    with pytest.raises(ValueError):
        sgl_kernel_cpu.copy_all_layer_kv_cache_cpu(*args, torch.tensor([-1]), torch.tensor([2]))
    assert torch.equal(buf, torch.zeros(4, 8))


@pytest.mark.parametrize("name", sgl_kernel_cpu.UNSUPPORTED)
def test_unsupported_ops_say_what_they_are(name):
    with pytest.raises(NotImplementedError, match=name):
        getattr(sgl_kernel_cpu, name)(torch.zeros(1))


def test_speculative_ops_refuse_bad_input():
    from dsv32_plugin.sgl_kernel_cpu import speculative_ops as spec

    with pytest.raises(ValueError):  # an accept length of 0 has no last accepted token
        spec.fill_bonus_tokens_cpu(torch.zeros(2, 3), torch.tensor([1, 0]), torch.zeros(2), 3)
    with pytest.raises(NotImplementedError, match="tree_mask_mode 2"):
        spec.build_tree_kernel_efficient_cpu(*[torch.zeros(1, 2, dtype=torch.int64)] * 8, 1, 1, 2, 2)
    with pytest.raises(ValueError):
        spec.assign_draft_cache_locs_contiguous_cpu(torch.tensor([0]), torch.zeros(1, 8), torch.tensor([6]),
                                                    torch.zeros(4), 8, 2, 2)


def test_greedy_verify_survives_a_cyclic_sibling_list():
    from dsv32_plugin.sgl_kernel_cpu import speculative_ops as spec

    nxt = torch.tensor([[1, -1, -1]])
    sib = torch.tensor([[-1, 2, 1]])  # 1 -> 2 -> 1 -> ...
    acc_idx, acc_num, predicts = torch.full((1, 3), -1), torch.zeros(1, dtype=torch.int64), torch.zeros(3, dtype=torch.int64)
    spec.verify_tree_greedy_cpu(predicts, acc_idx, acc_num, torch.tensor([[0, 5, 6]]), torch.tensor([[0, 1, 2]]),
                                nxt, sib, torch.tensor([7, 7, 7]))
    assert acc_num.tolist() == [0] and acc_idx.tolist() == [[0, -1, -1]] and predicts.tolist() == [7, 0, 0]
