"""DeepseekV32ForCausalLM and its MTP draft model, built from host layers and our DSA attention."""
