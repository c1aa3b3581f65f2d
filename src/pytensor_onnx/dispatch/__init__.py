"""The converter registry.

``onnx_funcify`` is a :func:`functools.singledispatch` function keyed on the Op class; the
modules imported here register converters for PyTensor's Ops, one module per PyTensor area.
"""

from pytensor_onnx.dispatch import (
    blockwise,
    builders,
    elemwise,
    ifelse,
    math,
    nlinalg,
    scalar,
    scalar_math,
    scan,
    slinalg,
    special,
    tensor_basic,
)
from pytensor_onnx.dispatch.basic import (
    UnsupportedEntry,
    UnsupportedOpError,
    convert_nodes,
    onnx_funcify,
)

__all__ = [
    "UnsupportedEntry",
    "UnsupportedOpError",
    "blockwise",
    "builders",
    "convert_nodes",
    "elemwise",
    "math",
    "onnx_funcify",
    "scalar",
    "scalar_math",
    "special",
    "tensor_basic",
]
