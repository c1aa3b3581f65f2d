"""The rewrite set applied to every graph before conversion.

Like PyTensor's JAX backend, export starts from the user's *un-rewritten* graph and applies
``fast_run`` (canonicalize, stabilize, specialize) without the rewrites that only make sense
for other backends: C-only and BLAS specializations, inplace destruction, and elementwise
fusion into ``Composite`` (ONNX Runtime fuses on its own).  The exported op set therefore does
not depend on the mode the user compiled with.
"""

from __future__ import annotations

from pytensor.compile.mode import optdb
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.db import RewriteDatabaseQuery

#: Rewrite tags every ONNX graph gets.
REQUIRED_REWRITES: tuple[str, ...] = ("minimum_compile",)

#: Rewrite tags and names that must not run (names differ between PyTensor 2.38 and 3.x).
INCOMPATIBLE_REWRITES: tuple[str, ...] = (
    "cxx_only",
    "BlasOpt",
    "inplace",
    "fusion",
    "local_careduce_fusion",
    "scan_save_mem_prealloc",
    "scan_reduce_trace_prealloc",
)


def onnx_rewrite_query() -> RewriteDatabaseQuery:
    """The :class:`~pytensor.graph.rewriting.db.RewriteDatabaseQuery` used for ONNX."""
    return RewriteDatabaseQuery(
        include=["fast_run", *REQUIRED_REWRITES], exclude=list(INCOMPATIBLE_REWRITES)
    )


def rewrite_for_onnx(fgraph: FunctionGraph) -> FunctionGraph:
    """Rewrite ``fgraph`` in place with the ONNX rewrite set and return it."""
    optdb.query(onnx_rewrite_query()).rewrite(fgraph)
    return fgraph
