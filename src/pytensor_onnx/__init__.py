"""pytensor-onnx: export PyTensor and PyMC graphs to ONNX, run PyTensor graphs on ONNX Runtime."""

from pytensor_onnx._version import __version__
from pytensor_onnx.builder import ONNXBuilder
from pytensor_onnx.dispatch import UnsupportedOpError, onnx_funcify
from pytensor_onnx.export import (
    DEFAULT_OPSET,
    NAMES_METADATA_KEY,
    InvalidModelError,
    export_onnx,
    feeds_by_name,
    newest_ir_version,
    newest_runtime_opset,
    supported_opsets,
)
from pytensor_onnx.inspect import model_summary, summary
from pytensor_onnx.linker import ONNXLinker, ONNXMode
from pytensor_onnx.verify import VerificationError, VerificationReport, verify

__all__ = [
    "DEFAULT_OPSET",
    "NAMES_METADATA_KEY",
    "InvalidModelError",
    "ONNXBuilder",
    "ONNXLinker",
    "ONNXMode",
    "UnsupportedOpError",
    "VerificationError",
    "VerificationReport",
    "__version__",
    "export_onnx",
    "feeds_by_name",
    "model_summary",
    "newest_ir_version",
    "newest_runtime_opset",
    "onnx_funcify",
    "summary",
    "supported_opsets",
    "verify",
]
