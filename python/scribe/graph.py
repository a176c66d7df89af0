"""Graphs from Python: Scribe's untyped graph core, with named dimensions.

    import numpy as np
    import scribe

    g = scribe.Graph("mlp")
    x = g.parameter("x", "f32", tokens=4, hidden=8)
    w = g.parameter("w", "f32", hidden=8, ffn=16)
    h = x.dot(w, "hidden").tanh()          # [tokens=4, ffn=16]: dims contracted by name
    loss = (h * h).sum()                    # a scalar
    g.outputs(h, loss)
    h_value, loss_value = g.run(x=np.ones((4, 8), np.float32), w=np.ones((8, 16), np.float32))
    print(g.hlo_text())                     # the same graph as XLA HLO

Every op is a node of the C++ graph (``scribe::graph``), appended by the same
builders the C++ library's typed layer and gradient rules use, so every op is
checked when it is added, with Scribe's messages (a contraction of dimensions
of different extents raises :class:`scribe.ScribeError` naming both). A graph
runs on the CPU (:meth:`Graph.run`: C-contiguous inputs of the parameter's
dtype are borrowed, not copied, and the outputs are Scribe's buffers handed to
NumPy), is lowered to HLO text or an ``HloModuleProto`` that XLA runs, and is
differentiated (:meth:`Graph.grad`) by the library's reverse mode.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from . import _native

__all__ = ["Graph", "Tensor", "concatenate"]

# NumPy's element type for each dtype (bf16: ml_dtypes' bfloat16 where it is
# installed; Scribe's native side holds its bits as uint16).
_NUMPY = {"pred": np.bool_, "s8": np.int8, "u8": np.uint8, "s32": np.int32, "s64": np.int64, "u32": np.uint32,
          "f16": np.float16, "f32": np.float32, "f64": np.float64}
try:
    import ml_dtypes

    _NUMPY["bf16"] = ml_dtypes.bfloat16
except ImportError:  # bf16 arrays in and out need ml_dtypes
    pass


# The dtypes whose elements cross to the native side as their bits (uint16).
_BITS = ("f16", "bf16")


def _numpy_type(dtype: str):
    if dtype not in _NUMPY:
        if dtype == "bf16":
            raise TypeError("bf16 arrays need the ml_dtypes package (pip install ml_dtypes)")
        raise TypeError(f"unknown dtype {dtype!r}")
    return np.dtype(_NUMPY[dtype])


def _dims(dims, named) -> list:
    """[(name, extent), ...] from a list of pairs, a dict, or keyword arguments."""
    if dims is not None and named:
        raise TypeError("give the dimensions as a list of (name, extent) pairs or as keywords, not both")
    if dims is None:
        dims = named
    items = list(dims.items()) if isinstance(dims, dict) else list(dims)
    out = []
    for d in items:
        if not (isinstance(d, (tuple, list)) and len(d) == 2 and isinstance(d[0], str)):
            raise TypeError(f"a dimension is a (name, extent) pair, not {d!r}")
        out.append((d[0], int(d[1])))
    return out


class Tensor:
    """A value of a :class:`Graph`: a node, with its dtype and named dimensions.
    Arithmetic makes new nodes; numbers are made tensors of this one's dtype
    and shape."""

    __slots__ = ("graph", "id")
    __array_priority__ = 1000  # numpy scalars on the left give way to Tensor's operators

    def __init__(self, graph: "Graph", id: int):
        self.graph = graph
        self.id = id

    # ---- what it is ----
    @property
    def dtype(self) -> str:
        return self.graph._g.dtype(self.id)

    @property
    def dims(self) -> dict:
        """{name: extent}, in order."""
        return dict(self.graph._g.dims(self.id))

    @property
    def names(self) -> tuple:
        return tuple(n for n, _ in self.graph._g.dims(self.id))

    @property
    def shape(self) -> tuple:
        return tuple(e for _, e in self.graph._g.dims(self.id))

    @property
    def op(self) -> str:
        return self.graph._g.op(self.id)

    def __repr__(self) -> str:
        dims = ", ".join(f"{n}={e}" for n, e in self.graph._g.dims(self.id))
        return f"Tensor({self.op} {self.dtype}[{dims}], node {self.id} of graph {self.graph.name!r})"

    def axis(self, name: str) -> int:
        """The position of the dimension called ``name``."""
        names = self.names
        if name not in names:
            raise ValueError(f"{self!r} has no dimension {name!r}; its dimensions are {list(names)}")
        return names.index(name)

    def _new(self, id: int) -> "Tensor":
        return Tensor(self.graph, id)

    def _same_graph(self, other: "Tensor") -> int:
        if other.graph is not self.graph:
            raise ValueError(f"{other!r} is a value of another graph than {self!r}")
        return other.id

    # ---- element-wise ----
    def _binary(self, op: str, other, reflected: bool = False) -> "Tensor":
        if isinstance(other, Tensor):
            a, b = (self._same_graph(other), self.id) if reflected else (self.id, self._same_graph(other))
            return self._new(self.graph._g.binary(op, a, b))
        if isinstance(other, (bool, np.bool_)) or not isinstance(other, (int, float, np.integer, np.floating)):
            return NotImplemented
        return self._new(self.graph._g.binary_scalar(op, self.id, float(other), reflected))

    def __add__(self, o): return self._binary("add", o)
    def __radd__(self, o): return self._binary("add", o, True)
    def __sub__(self, o): return self._binary("subtract", o)
    def __rsub__(self, o): return self._binary("subtract", o, True)
    def __mul__(self, o): return self._binary("multiply", o)
    def __rmul__(self, o): return self._binary("multiply", o, True)
    def __truediv__(self, o): return self._binary("divide", o)
    def __rtruediv__(self, o): return self._binary("divide", o, True)
    def __pow__(self, o): return self._binary("power", o)
    def __rpow__(self, o): return self._binary("power", o, True)
    def __neg__(self): return self._new(self.graph._g.unary("neg", self.id))

    def _compare(self, direction: str, other) -> "Tensor":
        if not isinstance(other, Tensor):
            other = self.graph.full(float(other), self.dtype, **self.dims)
        return self._new(self.graph._g.compare(direction, self.id, self._same_graph(other)))

    def __lt__(self, o): return self._compare("lt", o)
    def __le__(self, o): return self._compare("le", o)
    def __gt__(self, o): return self._compare("gt", o)
    def __ge__(self, o): return self._compare("ge", o)

    def eq(self, o) -> "Tensor":
        """Element-wise ``==`` (a ``pred`` tensor); ``==`` itself compares handles."""
        return self._compare("eq", o)

    def ne(self, o) -> "Tensor":
        return self._compare("ne", o)

    def select(self, if_true: "Tensor", if_false: "Tensor") -> "Tensor":
        """``if_true`` where this ``pred`` tensor holds, else ``if_false``."""
        return self._new(self.graph._g.select(self.id, self._same_graph(if_true), self._same_graph(if_false)))

    def convert(self, dtype: str) -> "Tensor":
        return self._new(self.graph._g.convert(self.id, dtype))

    # ---- layout ----
    def transpose(self, *names: str) -> "Tensor":
        """The dimensions in the order ``names``."""
        return self._new(self.graph._g.transpose(self.id, [self.axis(n) for n in names]))

    def reshape(self, dims=None, **named) -> "Tensor":
        """The same elements (C order) under new dimensions."""
        return self._new(self.graph._g.reshape(self.id, _dims(dims, named)))

    def broadcast(self, dims=None, **named) -> "Tensor":
        """This tensor repeated along the dimensions of ``dims`` it lacks; its own
        dimensions are found in ``dims`` by name."""
        to = _dims(dims, named)
        names = [n for n, _ in to]
        axes = []
        for n in self.names:
            if n not in names:
                raise ValueError(f"broadcast of {self!r}: its dimension {n!r} is not among {names}")
            axes.append(names.index(n))
        return self._new(self.graph._g.broadcast(self.id, to, axes))

    def slice(self, **bounds) -> "Tensor":
        """``x.slice(tokens=(0, 2))``: [start, stop) along the dimensions named."""
        starts, limits = [0] * len(self.shape), list(self.shape)
        for name, (start, stop) in bounds.items():
            starts[self.axis(name)], limits[self.axis(name)] = int(start), int(stop)
        return self._new(self.graph._g.slice(self.id, starts, limits))

    def pad(self, value: float = 0.0, **widths) -> "Tensor":
        """``x.pad(0.0, tokens=(1, 2))``: ``value`` before and after along the dimensions named."""
        low, high = [0] * len(self.shape), [0] * len(self.shape)
        for name, (before, after) in widths.items():
            low[self.axis(name)], high[self.axis(name)] = int(before), int(after)
        fill = self.graph.full(value, self.dtype)
        return self._new(self.graph._g.pad(self.id, fill.id, low, high))

    def gather(self, ids: "Tensor", dim: str) -> "Tensor":
        """The slices of this tensor along ``dim`` picked by the integer tensor
        ``ids``: dimensions this tensor's others, then ``ids``'."""
        return self._new(self.graph._g.gather(self.id, self._same_graph(ids), self.axis(dim)))

    # ---- contraction and reduction ----
    def dot(self, other: "Tensor", *contract: str, batch: Sequence[str] = ()) -> "Tensor":
        """The product contracting the dimensions named ``contract`` (each in both
        operands), batched over ``batch``: dimensions batch, then this one's
        others, then ``other``'s (XLA's dot order)."""
        self._same_graph(other)
        return self._new(self.graph._g.dot(self.id, other.id, [self.axis(n) for n in contract],
                                           [other.axis(n) for n in contract], [self.axis(n) for n in batch],
                                           [other.axis(n) for n in batch]))

    def reduce(self, reducer: str, *names: str) -> "Tensor":
        """``reducer`` (sum, max or min) over the dimensions named (none named: all)."""
        axes = [self.axis(n) for n in names] if names else list(range(len(self.shape)))
        return self._new(self.graph._g.reduce(self.id, axes, reducer))

    def sum(self, *names: str) -> "Tensor":
        return self.reduce("sum", *names)

    def mean(self, *names: str) -> "Tensor":
        count = 1
        for n in names or self.names:
            count *= self.dims[n]
        return self.reduce("sum", *names) / float(count)


def _element_wise(name: str, binary: bool):
    if binary:
        def method(self, other):
            return self._binary(name, other)
        method.__doc__ = f"Element-wise ``{name}`` of this tensor and ``other`` (a tensor of its shape, or a number)."
    else:
        def method(self):
            return self._new(self.graph._g.unary(name, self.id))
        method.__doc__ = f"Element-wise ``{name}``."
    method.__name__ = name
    return method


# A method for each element-wise op of Scribe's op table, by its name there.
for _name in _native.op_names("unary"):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _element_wise(_name, False))
for _name in _native.op_names("binary"):
    if not hasattr(Tensor, _name):
        setattr(Tensor, _name, _element_wise(_name, True))
# (``maximum`` and ``minimum`` are element-wise; the reductions are reduce("max", ...).)


def concatenate(tensors: Sequence[Tensor], dim: str) -> Tensor:
    """The tensors one after another along ``dim`` (the same dimensions otherwise)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    first = tensors[0]
    return first._new(first.graph._g.concatenate([first._same_graph(t) for t in tensors], first.axis(dim)))


class Graph:
    """A graph of Scribe ops: parameters, the ops on them, and outputs."""

    def __init__(self, name: str = "main"):
        self._g = _native.Graph(name)

    @property
    def name(self) -> str:
        return self._g.name

    def __len__(self) -> int:
        return len(self._g)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self)} nodes)"

    # ---- values ----
    def parameter(self, name: str, dtype: str = "f32", dims=None, **named) -> Tensor:
        """An input called ``name``: ``g.parameter("x", "f32", tokens=4, hidden=8)``
        (or ``dims=[("tokens", 4), ("hidden", 8)]``). Parameters are numbered by
        the byte order of their names, as JAX flattens a dict of arrays."""
        return Tensor(self, self._g.parameter(name, dtype, _dims(dims, named)))

    def constant(self, values, dtype: Optional[str] = None, dims=None, **named) -> Tensor:
        """A constant of ``values`` (an array; ``dtype`` default its own, as
        Scribe names it) with the dimensions named (as many as it has)."""
        a = np.asarray(values)
        if dtype is None:
            dtype = next((k for k, t in _NUMPY.items() if np.dtype(t) == a.dtype), None)
            if dtype is None:
                raise TypeError(f"constant: no Scribe dtype holds {a.dtype}; give dtype=")
        shape = _dims(dims, named)
        if tuple(e for _, e in shape) != a.shape:
            raise ValueError(f"constant: the values are {list(a.shape)} but the dimensions are {shape}")
        a = np.ascontiguousarray(a, dtype=_numpy_type(dtype))
        if dtype in _BITS:
            a = a.view(np.uint16)
        return Tensor(self, self._g.constant(dtype, shape, a))

    def full(self, value: float, dtype: str = "f32", dims=None, **named) -> Tensor:
        """``value`` everywhere (no dimensions: a scalar)."""
        return Tensor(self, self._g.full(dtype, _dims(dims, named), float(value)))

    # ---- outputs, gradients, export ----
    def outputs(self, *tensors: Tensor) -> None:
        """Sets the values :meth:`run` returns and the HLO's result tuple."""
        for t in tensors:
            if t.graph is not self:
                raise ValueError(f"{t!r} is a value of another graph")
        self._g.set_outputs([t.id for t in tensors])

    def grad(self, loss: Tensor, wrt: Iterable[Tensor]) -> list:
        """d(loss)/d(w) for each w of ``wrt`` (the loss a float scalar), made by
        Scribe's reverse mode as new nodes of this graph."""
        wrt = list(wrt)
        return [Tensor(self, i) for i in self._g.gradients(loss.id, [w.id for w in wrt])]

    def hlo_text(self) -> str:
        """The graph as an XLA HLO module, text."""
        return self._g.hlo_text()

    def hlo_proto(self) -> bytes:
        """The graph as a serialized ``HloModuleProto``."""
        return self._g.hlo_proto()

    def export(self, directory: Union[str, "os.PathLike[str]"], stem: Optional[str] = None) -> tuple:
        """Writes ``<stem>.hlo`` (text) and ``<stem>.pb`` (proto) into ``directory``
        (stem: the graph's name); returns their paths."""
        return tuple(self._g.write(os.fspath(directory), stem or self.name))

    @property
    def input_names(self) -> list:
        """The parameters :meth:`run` takes, in parameter order."""
        return list(self._g.input_names())

    def run(self, inputs: Optional[dict] = None, *, threads: int = 0, **named) -> list:
        """Runs the graph on the CPU: an array for each parameter, by name.
        Returns the outputs as NumPy arrays.

        An input that is C-contiguous and of the parameter's dtype is borrowed
        (read in place, never copied); another is converted to it first (a copy),
        as NumPy's ``same_kind`` casting allows. The outputs are Scribe's
        buffers, handed over (an output that is an input's elements is that
        input's memory, read-only)."""
        if int(threads) < 0:
            raise ValueError(f"run: threads must be 0 (one per core) or more, not {threads}")
        given = dict(inputs or {})
        given.update(named)
        args = []
        for name, value in given.items():
            node = self._find(name)
            want = _numpy_type(node.dtype)
            a = np.asarray(value)
            if a.dtype != want:
                if not np.can_cast(a.dtype, want, casting="same_kind"):
                    raise TypeError(f"run: input {name!r} is {a.dtype}, which does not cast to the parameter's "
                                    f"{node.dtype} ({want}) safely or within its kind")
                a = a.astype(want)
            a = np.ascontiguousarray(a)
            if node.dtype in _BITS:
                a = a.view(np.uint16)
            args.append((name, a))
        missing = [n for n in self.input_names if n not in given]
        if missing:
            raise ValueError(f"run: no array for {missing}; the graph takes {self.input_names}")
        outs = self._g.run(args, int(threads))
        return [o.view(_numpy_type(self._g.dtype(i))) if self._g.dtype(i) in _BITS else o for o, i in zip(outs, self._g.outputs)]

    def _find(self, name: str) -> Tensor:
        id = self._g.find_parameter(name)
        if id is None:
            raise ValueError(f"run: the graph has no parameter {name!r}; it takes {self.input_names}")
        return Tensor(self, id)
