"""Tool-call and reasoning detectors for DeepSeek-V3.2 / V3.2-Exp, on the host's base classes."""
