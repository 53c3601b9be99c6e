"""Test and demo helpers: tiny random-weight DeepSeek-V3.2 checkpoints and tokenizers.

``make_tiny_checkpoint(dir, variant="v32"|"v32-exp"|"speciale", *, fp8=False, seed=0)`` writes a
complete HF-format checkpoint (see ``tiny_checkpoint``). Exported lazily so that
``python -m dsv32_plugin.testing.tiny_checkpoint`` runs its module exactly once.
"""

__all__ = ["make_tiny_checkpoint"]


def __getattr__(name):
    if name == "make_tiny_checkpoint":
        from dsv32_plugin.testing.tiny_checkpoint import make_tiny_checkpoint

        return make_tiny_checkpoint
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
