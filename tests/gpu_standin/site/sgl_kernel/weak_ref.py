"""``weak_ref_tensor``: a view of a tensor's memory that does not keep that memory alive.

The host's graph runners keep such views of pool-allocated outputs so that the
allocator may reuse the memory between captures. Torch has no public
constructor for a non-owning tensor, so the view is built from an array
interface (``__cuda_array_interface__`` on CUDA, numpy's ``__array_interface__``
on the CPU): the new tensor references only a small holder object, never the
original storage. Element types go through a signed integer of the same
width, so bfloat16 and float8 work too.
"""

from __future__ import annotations

import torch

_INT_BY_WIDTH = {1: "|i1", 2: "<i2", 4: "<i4", 8: "<i8"}


class _Interface:
    def __init__(self, tensor: torch.Tensor, typestr: str, key: str):
        size = tensor.element_size()
        setattr(self, key, {
            "shape": tuple(tensor.shape),
            "strides": tuple(s * size for s in tensor.stride()),
            "typestr": typestr,
            "data": (tensor.data_ptr(), False),
            "version": 3,
            **({"stream": None} if key == "__cuda_array_interface__" else {}),
        })


def weak_ref_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """Same memory, shape, strides and dtype as ``tensor``; holds no reference to its storage.

    The caller must keep the memory alive while it uses the view (the graph runners
    do: the memory belongs to a captured graph's pool).
    """
    typestr = _INT_BY_WIDTH.get(tensor.element_size())
    if typestr is None:
        raise TypeError(f"weak_ref_tensor: no same-width integer view for {tensor.dtype}")
    if tensor.numel() == 0:  # no memory to refer to
        return torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=tensor.device)
    if tensor.is_cuda:
        holder = _Interface(tensor, typestr, "__cuda_array_interface__")
        raw = torch.as_tensor(holder, device=tensor.device)
    elif tensor.device.type == "cpu":
        import numpy

        raw = torch.from_numpy(numpy.asarray(_Interface(tensor, typestr, "__array_interface__")))
    else:
        raise TypeError(f"weak_ref_tensor: {tensor.device.type} tensors are not supported")
    return raw.view(tensor.dtype)
