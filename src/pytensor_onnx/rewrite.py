"""The rewrite set applied to every graph before conversion.

Like PyTensor's JAX backend, export starts from the user's *un-rewritten* graph and applies
``fast_run`` (canonicalize, stabilize, specialize) without the rewrites that only make sense
for other backends: C-only and BLAS specializations, inplace destruction, and elementwise
fusion into ``Composite`` (ONNX Runtime fuses on its own).  The exported op set therefore does
not depend on the mode the user compiled with.
"""

from __future__ import annotations

from pytensor.compile.mode import optdb
from pytensor.graph.basic import Apply, Variable
from pytensor.graph.fg import FunctionGraph
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.graph.rewriting.db import RewriteDatabaseQuery
from pytensor.tensor.basic import cast
from pytensor.tensor.math import exp

#: The tag of the rewrites this package adds to PyTensor's database for ONNX graphs only.
ONNX_TAG = "onnx_export"

#: Rewrite tags every ONNX graph gets.
REQUIRED_REWRITES: tuple[str, ...] = ("minimum_compile", ONNX_TAG)

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


@node_rewriter([exp])
def local_exp_of_integer(fgraph: FunctionGraph, node: Apply) -> list[Variable] | None:
    """``exp(x)`` of an integer ``x`` -> ``exp(cast(x, float))``, the same values.

    PyTensor's ``exp`` of an integer computes in its float output dtype, so the cast changes
    nothing.  Made explicit, it keeps PyTensor 2.38's and 3.0's ``local_log_sum_exp`` from
    rewriting ``log(sum(exp(x)))`` of an integer ``x`` forever: for an integer maximum its
    ``isinf`` guard folds to ``False`` and the result matches the rewrite again (an export of
    ``pt.logsumexp`` of an integer vector never returned).
    """
    x_dtype = node.inputs[0].type.dtype
    out_dtype = node.outputs[0].type.dtype
    if x_dtype == out_dtype:
        return None
    return [exp(cast(node.inputs[0], out_dtype))]


# After canonicalize (1), before stabilize (1.5), where ``local_log_sum_exp`` runs.
optdb.register("onnx_exp_of_integer", in2out(local_exp_of_integer), ONNX_TAG, position=1.45)


def onnx_rewrite_query() -> RewriteDatabaseQuery:
    """The :class:`~pytensor.graph.rewriting.db.RewriteDatabaseQuery` used for ONNX."""
    return RewriteDatabaseQuery(
        include=["fast_run", *REQUIRED_REWRITES], exclude=list(INCOMPATIBLE_REWRITES)
    )


def rewrite_for_onnx(fgraph: FunctionGraph) -> FunctionGraph:
    """Rewrite ``fgraph`` in place with the ONNX rewrite set and return it."""
    optdb.query(onnx_rewrite_query()).rewrite(fgraph)
    return fgraph
