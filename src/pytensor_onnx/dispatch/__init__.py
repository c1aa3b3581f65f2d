"""The converter registry.

``onnx_funcify`` is a :func:`functools.singledispatch` function keyed on the Op class; the
modules imported here register converters for PyTensor's Ops, one module per PyTensor area.
"""

from pytensor_onnx.dispatch import (
    blockwise,
    builders,
    elemwise,
    extra_ops,
    fft,
    ifelse,
    math,
    nlinalg,
    pad,
    pymc_random,
    raise_op,
    random,
    scalar,
    scalar_loop,
    scalar_math,
    scan,
    shape,
    signal,
    slinalg,
    sort,
    special,
    subtensor,
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
    "extra_ops",
    "fft",
    "ifelse",
    "math",
    "nlinalg",
    "onnx_funcify",
    "pad",
    "pymc_random",
    "raise_op",
    "random",
    "scalar",
    "scalar_loop",
    "scalar_math",
    "scan",
    "shape",
    "signal",
    "slinalg",
    "sort",
    "special",
    "subtensor",
    "tensor_basic",
]
