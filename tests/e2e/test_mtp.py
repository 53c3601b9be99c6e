"""MTP draft under EAGLE on CPU (``--speculative-algorithm EAGLE``, top-k 1, steps + 1 draft tokens).

* Greedy output with MTP (one draft step; and three chained steps) equals
  transformers' greedy output (float32), i.e. the output without MTP
  (test_parity_hf checks the plain server against the same).
* The draft's forward against a reference: transformers' own
  ``DeepseekV32DecoderLayer`` loaded with the checkpoint's MTP layer, fed
  ``eh_proj([enorm(embed(x_{t+1})) | hnorm(h_t)])`` over the whole sequence
  (h_t: HF's final-normed hidden state), then ``shared_head.norm`` and the
  target's lm_head. Its greedy drafts, walked the way EAGLE verifies them
  (draft at t proposes x_{t+2}; accepted: next draft at t+2, else t+1), give the
  exact verify count and number of accepted drafts the server must report.

Random weights give a draft that never hits, which would make that count
uninformative, so the checkpoint is reshaped (``make_draftable``): every
layer's attention and FFN outputs are scaled by 0.05 (the target becomes
nearly a bigram model, x_{t+1} ~ B(x_t)), the MTP ``eh_proj`` maps mostly the
embedding half (identity) plus a small random hidden half, and enorm is 1.
The draft then proposes ~B(x_{t+1}) = x_{t+2} and is mostly accepted, while
attention, indexer, MoE and the hidden input still move its logits.
"""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from dsv32_plugin.testing import make_tiny_checkpoint
from dsv32_plugin.testing.server import launch

pytestmark = [pytest.mark.server, pytest.mark.slow]

NEW_TOKENS = 24
OUTPUT_SCALE = 0.05


def make_draftable(ckpt) -> None:
    """Rewrite ``model.safetensors`` in place as described in the module docstring."""
    from safetensors.torch import save_file

    path = ckpt / "model.safetensors"
    tensors = load_file(str(path))
    config = json.loads((ckpt / "config.json").read_text())
    hidden = config["hidden_size"]
    mtp = f"model.layers.{config['num_hidden_layers']}."
    for name, tensor in tensors.items():
        if name.endswith(("self_attn.o_proj.weight", "down_proj.weight")):
            tensors[name] = (tensor.float() * OUTPUT_SCALE).to(tensor.dtype)
    gen = torch.Generator().manual_seed(3)
    eh = torch.cat([torch.eye(hidden), 0.1 * torch.randn(hidden, hidden, generator=gen) / hidden**0.5], dim=1)
    tensors[mtp + "eh_proj.weight"] = eh.to(tensors[mtp + "eh_proj.weight"].dtype)
    tensors[mtp + "enorm.weight"] = torch.ones_like(tensors[mtp + "enorm.weight"])
    save_file(tensors, str(path), metadata={"format": "pt"})


@pytest.fixture(scope="module")
def draftable(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("mtp")
    ckpt = make_tiny_checkpoint(root / "tiny")
    make_draftable(ckpt)
    hf = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32, attn_implementation="eager").eval()
    return root, ckpt, hf


# name -> (flags, environment); two ranks bind each rank's OpenMP threads to its own core
TWO_RANKS = {"SGLANG_CPU_OMP_THREADS_BIND": "0|1"}
LAYOUTS = {
    "one-rank": ((), None),
    "tp2": (("--tp", "2"), TWO_RANKS),
}
# No --pp-size: sglang 0.5.23 runs PP with speculative decoding only on PD prefill nodes
# (validation_hook.check_pipeline_parallel_compat), and PD needs a KV transfer engine that CPUs lack.


def eagle_server(draftable, steps: int, layout: str = "one-rank"):
    root, ckpt, _ = draftable
    flags, env = LAYOUTS[layout]
    return launch(ckpt, root, "--dtype", "float32", "--speculative-algorithm", "EAGLE", "--speculative-num-steps",
                  str(steps), "--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", str(steps + 1),
                  *flags, env=env)


def greedy_round(server, hf) -> tuple[list[int], list[int], dict]:
    """(prompt, output, meta) of a 24-token greedy request; the output must equal transformers'."""
    ids = torch.randint(5, 600, (40,), generator=torch.Generator().manual_seed(2)).tolist()
    out = server.generate({"input_ids": ids, "sampling_params": {"max_new_tokens": NEW_TOKENS, "temperature": 0,
                                                                  "ignore_eos": True}})
    with torch.no_grad():
        expected = hf.generate(torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False,
                               eos_token_id=None, pad_token_id=0)[0, len(ids):].tolist()
    assert out["output_ids"] == expected
    return ids, expected, out["meta_info"]


def reference_drafts(hf, ckpt, ids: list[int]) -> list[int]:
    """Greedy MTP draft at every position t (proposing ids[t + 2]) from transformers' modules."""
    from transformers.models.deepseek_v32.modeling_deepseek_v32 import DeepseekV32DecoderLayer, DeepseekV32RMSNorm

    config = hf.config
    n_layers = config.num_hidden_layers
    prefix = f"model.layers.{n_layers}."
    tensors = {k[len(prefix):]: v.float() for k, v in load_file(str(ckpt / "model.safetensors")).items()
               if k.startswith(prefix)}
    layer = DeepseekV32DecoderLayer(config, layer_idx=n_layers - 1).float().eval()  # a MoE layer
    state = {k: v for k, v in tensors.items() if k.startswith(("self_attn.", "input_layernorm.",
                                                                "post_attention_layernorm.", "mlp.gate.",
                                                                "mlp.shared_experts."))}
    experts = config.n_routed_experts
    state["mlp.experts.gate_up_proj"] = torch.stack(
        [torch.cat([tensors[f"mlp.experts.{e}.gate_proj.weight"], tensors[f"mlp.experts.{e}.up_proj.weight"]])
         for e in range(experts)])
    state["mlp.experts.down_proj"] = torch.stack([tensors[f"mlp.experts.{e}.down_proj.weight"] for e in range(experts)])
    layer.load_state_dict(state, strict=True)

    def norm(name):
        module = DeepseekV32RMSNorm(config.hidden_size, config.rms_norm_eps)
        module.weight.data.copy_(tensors[f"{name}.weight"])
        return module

    enorm, hnorm, head_norm = norm("enorm"), norm("hnorm"), norm("shared_head.norm")
    with torch.no_grad():
        x = torch.tensor([ids])
        h = hf.model(x).last_hidden_state[0, :-1]  # h_t, t = 0 .. L-2
        e = hf.model.embed_tokens(x)[0, 1:]  # embed(x_{t+1})
        u = torch.cat([enorm(e), hnorm(h)], -1) @ tensors["eh_proj.weight"].T
        length = u.shape[0]
        positions = torch.arange(length)[None]
        mask = torch.full((length, length), torch.finfo(torch.float32).min).triu(1)[None, None]
        out = layer(u[None], attention_mask=mask, position_ids=positions,
                    position_embeddings=hf.model.rotary_emb(u[None], positions))
        out = out[0] if isinstance(out, tuple) else out
        logits = hf.lm_head(head_norm(out[0]))
    return logits.argmax(-1).tolist()


def eagle_walk(drafts: list[int], ids: list[int], prompt_len: int) -> tuple[int, int]:
    """(verify steps, accepted drafts) of one-step greedy EAGLE over the final sequence ``ids``."""
    t, verifies, accepted = prompt_len - 1, 0, 0
    while t + 1 < len(ids) - 1:  # tokens ids[t + 1] are known; more to produce
        verifies += 1
        if drafts[t] == ids[t + 2]:
            accepted += 1
            t += 2
        else:
            t += 1
    return verifies, accepted


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_mtp_greedy_output_equals_target_and_draft_matches_reference(draftable, layout):
    """Under --tp 2 the target and the draft are sharded; output and counts stay exactly those of one rank."""
    _, ckpt, hf = draftable
    with eagle_server(draftable, steps=1, layout=layout) as server:
        ids, output, meta = greedy_round(server, hf)
    full = ids + output
    verifies, accepted = eagle_walk(reference_drafts(hf, ckpt, full), full, len(ids))
    print(f"MTP 1 step, {layout}: accept length {meta['spec_accept_length']:.3f}, accepted drafts "
          f"{meta['spec_num_correct_drafts']}/{meta['spec_verify_ct']} (reference {accepted}/{verifies})")
    assert (meta["spec_verify_ct"], meta["spec_num_correct_drafts"]) == (verifies, accepted)


def test_multi_step_mtp_greedy_output_equals_target(draftable):
    """Three chained draft steps (the draft feeds on its own hidden states): output unchanged, drafts accepted."""
    _, _, hf = draftable
    with eagle_server(draftable, steps=3) as server:
        _, output, meta = greedy_round(server, hf)
    print(f"MTP 3 steps: accept length {meta['spec_accept_length']:.3f}, accepted drafts "
          f"{meta['spec_num_correct_drafts']} in {meta['spec_verify_ct']} verifies")
    assert meta["spec_verify_ct"] < len(output) - 1 and meta["spec_num_correct_drafts"] > meta["spec_verify_ct"]
