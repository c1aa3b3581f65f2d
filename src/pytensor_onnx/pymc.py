"""PyMC entry points: a model's log-density, its gradient (the NUTS interface) and predictions.

Needs PyMC: the optional extra ``pymc`` (``pip install -e ".[pymc]"`` from a clone).

- :func:`export_logp`: inputs are the model's value variables (transformed space, named as
  PyMC names them, e.g. ``sigma_log__``), output the scalar joint ``logp``.
- :func:`export_logp_dlogp`: one raveled float64 vector ``x`` in, ``logp`` and ``dlogp`` out,
  as ``model.logp_dlogp_function(ravel_inputs=True)`` computes them; how to unpack ``x`` is
  stored as JSON in the model's ``pymc.ravel`` metadata entry.
- :func:`export_predictive`: deterministic expressions (e.g. ``mu``, ``p``) evaluated for every
  posterior draw, with the draws baked in as initializers and ``pm.Data`` containers as graph
  inputs.  Sampling noise (observation-level randomness) is *not* included.
- :func:`export_posterior_predictive`: draws of observed (or other) variables, with their
  observation noise, one per posterior draw, from the ``seed`` input (int64); PyMC's own
  ``vectorize_over_posterior`` builds the graph.
- :func:`export_prior_predictive`: ``draws`` draws from the prior, from the ``seed`` input.

PyMC's parameter checks (``CheckParameterValue``) follow the policy of
:mod:`pytensor_onnx.dispatch.raise_op`: ``-inf`` for logp support checks, NaN for others.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence, Set
from typing import Any

import numpy as np
import onnx
import pytensor
import pytensor.tensor as pt
from pytensor.compile.builders import OpFromGraph
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Variable
from pytensor.graph.replace import _vectorize_node, graph_replace, vectorize_graph
from pytensor.graph.traversal import ancestors, applys_between, graph_inputs
from pytensor.tensor.blockwise import vectorize_node_fallback
from pytensor.tensor.random.op import default_rng
from pytensor.tensor.random.rewriting.basic import local_rv_size_lift
from pytensor.tensor.random.type import RandomGeneratorType
from pytensor.tensor.rewriting.ofg import inline_ofg_node

from pytensor_onnx.export import PathLike, export_onnx

try:
    import pymc as pm
    from pymc.distributions.shape_utils import change_dist_size
    from pymc.pytensorf import join_nonshared_inputs
    from pymc.sampling.forward import vectorize_over_posterior
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "pytensor_onnx.pymc needs PyMC: pip install -e '.[pymc]' from a clone of pytensor-onnx "
        "(or pip install pymc)"
    ) from err

#: The metadata key holding the unpacking information of ``export_logp_dlogp``'s input.
RAVEL_METADATA_KEY = "pymc.ravel"


def _data_inputs(model: pm.Model, data_as_inputs: bool | Sequence[str]) -> list[Any]:
    if data_as_inputs is False:
        return []
    data_vars = list(model.data_vars)
    if data_as_inputs is True:
        return data_vars
    by_name = {var.name: var for var in data_vars}
    unknown = [name for name in data_as_inputs if name not in by_name]
    if unknown:
        raise ValueError(f"{unknown} are not pm.Data containers of the model ({sorted(by_name)})")
    return [by_name[name] for name in data_as_inputs]


def _used_data(outputs: Sequence[Variable], candidates: Sequence[Any]) -> list[Any]:
    """The candidates that ``outputs`` depend on (unused shared variables cannot be inputs)."""
    used = set(graph_inputs(outputs))
    return [var for var in candidates if var in used]


def export_logp(
    model: pm.Model,
    path: PathLike | None = None,
    *,
    jacobian: bool = True,
    data_as_inputs: bool | Sequence[str] = False,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export the model's joint log-density as a function of its value variables.

    Parameters
    ----------
    model
        The PyMC model.
    path
        Where to write the ``.onnx`` file (optional).
    jacobian
        Include the Jacobian terms of the value-variable transforms, as ``model.logp``.
    data_as_inputs
        ``True`` for every ``pm.Data`` container as a graph input, or a list of their names;
        ``False`` bakes the data into the model.
    export_kwargs
        Passed to :func:`pytensor_onnx.export_onnx` (``opset``, ``float32``...).

    Returns
    -------
    onnx.ModelProto
        Inputs: the value variables in ``model.value_vars`` order, then chosen data; output
        ``logp`` (a 0-d float).
    """
    logp = model.logp(jacobian=jacobian)
    logp.name = "logp"
    data = _used_data([logp], _data_inputs(model, data_as_inputs))
    return export_onnx(list(model.value_vars), [logp], path, shared_inputs=data, **export_kwargs)


def export_logp_dlogp(
    model: pm.Model,
    path: PathLike | None = None,
    *,
    jacobian: bool = True,
    data_as_inputs: bool | Sequence[str] = False,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export ``logp`` and its gradient over one raveled vector of the continuous values.

    This is the interface NUTS samplers call.  The vector ``x`` is the concatenation of the
    raveled value variables in ``model.continuous_value_vars`` order; the model's
    ``pymc.ravel`` metadata entry holds, as JSON, a list of ``{"name", "shape", "dtype",
    "start", "stop"}`` records describing that layout.

    Parameters
    ----------
    model, path, jacobian, data_as_inputs, export_kwargs
        As for :func:`export_logp`.

    Returns
    -------
    onnx.ModelProto
        Input ``x`` (1-D float64), outputs ``logp`` (0-d) and ``dlogp`` (like ``x``).

    Raises
    ------
    ValueError
        If the model has discrete free variables (their gradient does not exist).
    """
    value_vars = list(model.value_vars)
    continuous = list(model.continuous_value_vars)
    discrete = [v.name for v in value_vars if v not in continuous]
    if discrete:
        raise ValueError(
            f"the model has discrete free variables {discrete}; logp+gradient needs continuous "
            "ones only (marginalize them, or use export_logp)"
        )
    logp = model.logp(jacobian=jacobian)
    grads = pytensor.grad(logp, continuous)
    assert isinstance(grads, list)
    dlogp = pt.concatenate([pt.flatten(g) for g in grads])
    point = model.initial_point()
    (logp_raveled, dlogp_raveled), x = join_nonshared_inputs(point, [logp, dlogp], continuous)
    x.name = "x"
    logp_raveled.name = "logp"
    dlogp_raveled.name = "dlogp"

    layout = []
    start = 0
    for var in continuous:
        shape = [int(d) for d in np.shape(point[var.name])]
        size = int(np.prod(shape, dtype=np.int64))
        layout.append(
            {
                "name": var.name,
                "shape": shape,
                "dtype": str(var.dtype),
                "start": start,
                "stop": start + size,
            }
        )
        start += size
    outputs = [logp_raveled, dlogp_raveled]
    data = _used_data(outputs, _data_inputs(model, data_as_inputs))
    metadata = {RAVEL_METADATA_KEY: json.dumps(layout)}
    metadata.update(export_kwargs.pop("metadata", None) or {})
    return export_onnx([x], outputs, path, shared_inputs=data, metadata=metadata, **export_kwargs)


def _posterior_draws(model: pm.Model, draws: Any, names: Sequence[str]) -> dict[str, np.ndarray]:
    """``{free RV name: array of shape (n_draws, *rv_shape)}`` from InferenceData or a mapping."""
    posterior = getattr(draws, "posterior", None)
    if posterior is None and not isinstance(draws, Mapping):
        raise TypeError("draws must be an arviz.InferenceData with a posterior, or a mapping")
    available = posterior.data_vars if posterior is not None else draws
    missing = [name for name in names if name not in available]
    if missing:
        raise ValueError(
            f"the requested variables depend on free random variables {missing} that have no "
            "posterior draws (e.g. a GP conditional or another variable added to the model "
            "after sampling): drawing them needs random sampling, which export_predictive "
            "does not do; pass draws that contain them"
        )
    result: dict[str, np.ndarray] = {}
    for name in names:
        if posterior is not None:
            values = np.asarray(posterior[name].values)  # (chain, draw, *shape)
            values = values.reshape(-1, *values.shape[2:])
        else:
            values = np.asarray(draws[name])
        result[name] = values
    return result


def export_predictive(
    model: pm.Model,
    draws: Any,
    path: PathLike | None = None,
    *,
    var_names: Sequence[str],
    data_as_inputs: bool | Sequence[str] = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export deterministic model expressions evaluated at every posterior draw.

    Parameters
    ----------
    model
        The PyMC model.
    draws
        An ``arviz.InferenceData`` with a ``posterior`` group (chains are stacked), or a
        mapping from free-variable names to arrays with a leading draw axis.
    path
        Where to write the ``.onnx`` file (optional).
    var_names
        Names of ``pm.Deterministic`` variables (or free variables) to return.
    data_as_inputs
        ``pm.Data`` containers that become graph inputs (default: all that are used), so new
        data can be fed at prediction time.
    export_kwargs
        Passed to :func:`pytensor_onnx.export_onnx`.

    Returns
    -------
    onnx.ModelProto
        Inputs: the chosen data containers; outputs: one per name, with a leading draw axis.

    Raises
    ------
    ValueError
        For names of observed variables (their sampling noise is not part of this export),
        names that are not variables of the model, and outputs that depend on free
        variables without posterior draws.
    """
    observed = {rv.name for rv in model.observed_RVs}
    noisy = [name for name in var_names if name in observed]
    if noisy:
        raise ValueError(
            f"{noisy} are observed random variables: sampling noise is not exported; wrap "
            "their expected value in a pm.Deterministic and export that"
        )
    unknown = [name for name in var_names if name not in model.named_vars]
    if unknown:
        raise ValueError(
            f"{unknown} are not variables of the model; it has {sorted(model.named_vars)}"
        )
    outputs = [model[name] for name in var_names]
    upstream = set(ancestors(outputs))
    free = [rv for rv in model.free_RVs if rv in upstream]
    values = _posterior_draws(model, draws, [rv.name for rv in free])
    replacements = {}
    for rv in free:
        stacked = pytensor.shared(values[rv.name].astype(rv.dtype), name=f"{rv.name}_draws")
        replacements[rv] = stacked
    batched = vectorize_graph(outputs, replace=replacements)
    for out, name in zip(batched, var_names, strict=True):
        out.name = name
    data = _used_data(batched, _data_inputs(model, data_as_inputs))
    return export_onnx([], batched, path, shared_inputs=data, **export_kwargs)


#: The name of the int64 seed input of the predictive exports.
SEED_NAME = "seed"


def _model_vars(model: pm.Model, var_names: Sequence[str]) -> list[Variable]:
    unknown = [name for name in var_names if name not in model.named_vars]
    if unknown:
        raise ValueError(
            f"{unknown} are not variables of the model; it has {sorted(model.named_vars)}"
        )
    return [model[name] for name in var_names]


def _export_draws(
    model: pm.Model,
    outputs: Sequence[Variable],
    names: Sequence[str],
    path: PathLike | None,
    data_as_inputs: bool | Sequence[str],
    export_kwargs: dict[str, Any],
) -> onnx.ModelProto:
    """Export ``outputs`` with the random generators they use made from one int64 ``seed``
    input: generator ``i`` is ``default_rng(seed + i)`` (distinct generators keep PyTensor
    from merging two identical draws into one; every RandomVariable node has its own
    stream)."""
    seed = pt.scalar(SEED_NAME, dtype="int64")
    generators = [
        var
        for var in graph_inputs(outputs)
        if isinstance(var.type, pt.random.type.RandomGeneratorType)
    ]
    made: dict[Variable, Variable] = {}
    for i, gen in enumerate(generators):
        made_generator = default_rng(seed + i)
        assert isinstance(made_generator, Variable)
        made[gen] = made_generator
    replaced = graph_replace(list(outputs), made, strict=False)
    for out, name in zip(replaced, names, strict=True):
        out.name = name
    data = _used_data(replaced, _data_inputs(model, data_as_inputs))
    inputs = [seed] if generators else []
    return export_onnx(inputs, replaced, path, shared_inputs=data, **export_kwargs)


def _lengths_from_data(
    model: pm.Model, outputs: Sequence[Variable], data: Sequence[Any]
) -> list[Variable]:
    """``outputs`` with the length of every dimension (``dims``) that a container of ``data``
    has replaced by that container's length, so that new data of another length resizes
    everything along that dimension (as ``pm.set_data`` with new coords does)."""
    lengths: dict[Variable, Variable] = {}
    for var in data:
        for axis, dim in enumerate(model.named_vars_to_dims.get(var.name) or ()):
            length = model.dim_lengths.get(dim) if dim is not None else None
            if isinstance(length, SharedVariable) and length not in lengths:
                lengths[length] = var.shape[axis]
    return graph_replace(list(outputs), lengths, strict=False) if lengths else list(outputs)


def _sizes_lifted(outputs: Sequence[Variable], keep: Set[str] = frozenset()) -> list[Variable]:
    """``outputs`` with the parameters of every random variable with an explicit size
    (``dims``, ``shape=...``, an observed variable's data shape) broadcast to that size and
    the size removed (PyTensor's ``local_rv_size_lift``): ``vectorize_graph`` cannot extend
    a size by the draw axes, but it extends the parameters.  The variables named in ``keep``
    and what they are made of are left as they are."""
    outputs = list(outputs)
    # One variable at a time: PyTensor 2's graph_replace fails on replacements that depend on
    # each other.
    while lifted := _one_size_lifted(outputs, keep):
        outputs = graph_replace(outputs, lifted, strict=False)
    return outputs


def _one_size_lifted(outputs: Sequence[Variable], keep: Set[str]) -> dict[Variable, Variable]:
    """The replacement that lifts the size of one random variable of ``outputs`` (empty if
    none has a size), keeping the names (free variables are found by name)."""
    in_graph = set(ancestors(outputs))
    protected = _made_of(outputs, keep)
    for node in applys_between(graph_inputs(outputs), outputs):
        if any(out in protected for out in node.outputs):
            continue
        new = local_rv_size_lift.transform(None, node)  # None for other Ops and no size
        if new:
            lifted = {}
            for before, after in zip(node.outputs, new, strict=True):
                if before in in_graph:  # not the generator's update, mostly
                    after.name = before.name
                    lifted[before] = after
            return lifted
    return {}


def _named_in(outputs: Sequence[Variable], names: Collection[str | None]) -> list[Variable]:
    """The variables of ``outputs``' graph with one of ``names`` (after a graph_replace, which
    clones what it rebuilds, the model's own variables may not be in it)."""
    return [var for var in ancestors(outputs) if var.owner is not None and var.name in names]


def _inline_unvectorizable_rvs(outputs: list[Variable], keep: Set[str]) -> list[Variable]:
    """``outputs`` with every symbolic random variable that PyTensor cannot vectorize replaced
    by its inner graph, whose random variables vectorize, except those named in ``keep``
    and what they are made of.

    Such are PyMC's ``SymbolicRandomVariable``s without a vectorization of their own, e.g.
    ``NormalMixture``'s: the fallback (a ``Blockwise``) refuses generator inputs.  The
    model's roots and what they are made of (``keep``: e.g. a ``HalfCauchy`` or a
    ``HurdlePoisson`` drawn from no other variable) stay, as they are resized or replaced by
    posterior draws, not vectorized.  ``pm.sample_posterior_predictive`` does not meet them,
    as it draws one posterior draw at a time.
    """
    while True:
        replacements: dict[Variable, Variable] = {}
        protected = _made_of(outputs, keep)
        for node in applys_between(graph_inputs(outputs), outputs):
            if (
                isinstance(node.op, OpFromGraph)
                and _vectorize_node.dispatch(type(node.op)) is vectorize_node_fallback
                and any(isinstance(var.type, RandomGeneratorType) for var in node.inputs)
                and not any(out in protected for out in node.outputs)
            ):
                for old, new in zip(node.outputs, inline_ofg_node(node), strict=True):
                    new.name = old.name
                    replacements[old] = new
        if not replacements:
            return outputs
        outputs = list(graph_replace(outputs, replacements, strict=False))


def _root_names(model: pm.Model, outputs: Sequence[Variable]) -> set[str]:
    """The names of the model's random variables in ``outputs``' graph that are drawn from
    no other random variable of the model (the ones a draw axis is put in front of)."""
    rvs = _named_in(outputs, {rv.name for rv in model.basic_RVs})
    return {str(rv.name) for rv in rvs if not set(rvs) & set(ancestors(rv.owner.inputs))}


def _made_of(outputs: Sequence[Variable], names: Set[str]) -> set[Variable]:
    """The variables named in ``names`` in ``outputs``' graph and all they are made of (found
    anew after every ``graph_replace``, which in PyTensor 2 clones the whole graph)."""
    return set(ancestors(_named_in(outputs, names)))


def export_posterior_predictive(
    model: pm.Model,
    idata: Any,
    path: PathLike | None = None,
    *,
    var_names: Sequence[str],
    data_as_inputs: bool | Sequence[str] = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export posterior-predictive draws: one draw of each variable per posterior draw.

    The graph is PyMC's (``pymc.sampling.forward.vectorize_over_posterior``, as
    ``pm.sample_posterior_predictive`` builds it): the free variables take their posterior
    draws (baked in as initializers), and the requested variables, e.g. observed ones, are
    drawn with their noise.  Draws are a deterministic function of the ``seed`` input; they
    follow PyMC's distributions but are not NumPy's stream (see ``docs/random.md``).

    Parameters
    ----------
    model
        The PyMC model.
    idata
        An ``arviz.InferenceData`` with a ``posterior`` group, or that group (an
        ``xarray.Dataset`` with ``chain`` and ``draw`` dimensions); chains are stacked.
    path
        Where to write the ``.onnx`` file (optional).
    var_names
        Names of the variables to draw (observed variables, deterministics, or variables
        added after sampling such as a GP conditional).
    data_as_inputs
        ``pm.Data`` containers that become graph inputs (default: all that are used), so
        new data of any length can be fed.
    export_kwargs
        Passed to :func:`pytensor_onnx.export_onnx`.

    Returns
    -------
    onnx.ModelProto
        Inputs: ``seed`` (0-d int64), then the chosen data containers; outputs: one per
        name, with a leading axis of ``chains * draws``.
    """
    data = _data_inputs(model, data_as_inputs)
    outputs = _sizes_lifted(_lengths_from_data(model, _model_vars(model, var_names), data))
    outputs = _inline_unvectorizable_rvs(outputs, keep=_root_names(model, outputs))
    posterior = getattr(idata, "posterior", idata)
    # Free variables without posterior draws (e.g. a GP conditional added after sampling) are
    # drawn, as pm.sample_posterior_predictive draws them.
    with_draws = _named_in(
        outputs, {rv.name for rv in model.free_RVs if rv.name in posterior.data_vars}
    )
    vectorized = vectorize_over_posterior(
        outputs, posterior, with_draws, sample_dims=("chain", "draw")
    )
    # One draw axis: the chains stacked.
    tensors = [pt.as_tensor_variable(var) for var in vectorized]
    stacked = [var.reshape((-1, *var.shape[2:]), ndim=var.ndim - 1) for var in tensors]
    return _export_draws(model, stacked, var_names, path, data_as_inputs, export_kwargs)


def export_prior_predictive(
    model: pm.Model,
    path: PathLike | None = None,
    *,
    draws: int,
    var_names: Sequence[str],
    data_as_inputs: bool | Sequence[str] = True,
    **export_kwargs: Any,
) -> onnx.ModelProto:
    """Export ``draws`` prior-predictive draws of ``var_names`` (free, observed or
    deterministic variables), as ``pm.sample_prior_predictive`` makes them.

    Parameters
    ----------
    model
        The PyMC model.
    path
        Where to write the ``.onnx`` file (optional).
    draws
        The number of draws (the outputs' leading axis).
    var_names, data_as_inputs, export_kwargs
        As for :func:`export_posterior_predictive`.

    Returns
    -------
    onnx.ModelProto
        Inputs: ``seed`` (0-d int64), then the chosen data containers; outputs: one per
        name, with a leading axis of length ``draws``.
    """
    data = _data_inputs(model, data_as_inputs)
    outputs = _lengths_from_data(model, _model_vars(model, var_names), data)
    # A draw axis in front of every root random variable (one without random ancestors),
    # which vectorize_graph carries to everything drawn from them.  The other random
    # variables' sizes are lifted, as for the posterior predictive (a size does not extend by
    # the draw axis); the roots keep theirs, which change_dist_size extends.
    roots = _root_names(model, outputs)
    outputs = _sizes_lifted(_inline_unvectorizable_rvs(outputs, keep=roots), keep=roots)
    replacements = {
        rv: change_dist_size(rv, new_size=(draws,), expand=True) for rv in _named_in(outputs, roots)
    }
    vectorized = vectorize_graph(outputs, replace=replacements)
    return _export_draws(model, vectorized, var_names, path, data_as_inputs, export_kwargs)


__all__ = [
    "RAVEL_METADATA_KEY",
    "SEED_NAME",
    "export_logp",
    "export_logp_dlogp",
    "export_posterior_predictive",
    "export_predictive",
    "export_prior_predictive",
]
