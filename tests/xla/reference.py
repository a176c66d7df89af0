"""An independent NumPy reference for the conformance cases.

It reads a case's description from cases.json (what the op computes, in terms of
dimension names) and computes the expected outputs from the inputs with NumPy,
working by name: every value is a (array, [dim names]) pair, and results are put
into the output's declared order only at the end, by name. It never reads the
HLO.
"""
import math

import numpy as np
import ml_dtypes

DTYPES = {
    "pred": np.bool_, "s8": np.int8, "u8": np.uint8, "s32": np.int32, "s64": np.int64,
    "u32": np.uint32, "f16": np.float16, "bf16": ml_dtypes.bfloat16, "f32": np.float32,
    "f64": np.float64,
}
FLOATS = {"f16", "bf16", "f32", "f64"}


def np_dtype(name):
    return np.dtype(DTYPES[name])


class Named:
    def __init__(self, array, names):
        self.a = np.asarray(array)
        self.names = list(names)
        assert self.a.ndim == len(self.names), (self.a.shape, self.names)

    def axis(self, name):
        return self.names.index(name)

    def to(self, names):
        assert sorted(names) == sorted(self.names), f"dims {self.names} vs {names}"
        return np.transpose(self.a, [self.names.index(n) for n in names])


def make_inputs(case, rng, replica=0):
    arrays = []
    domains = case.get("domains") or {}
    for inp in case["inputs"]:
        shape = [d["extent"] for d in inp["dims"]]
        dt = inp["dtype"]
        dom = domains.get(inp["name"], "any")
        if isinstance(dom, list):
            a = rng.integers(dom[0], dom[1] + 1, size=shape)
        elif dt == "pred":
            a = rng.integers(0, 2, size=shape).astype(bool)
        elif dt in FLOATS:
            a = rng.standard_normal(size=shape)
            if dom == "positive":
                a = rng.uniform(0.5, 2.0, size=shape)
            elif dom == "nonzero":
                a = np.where(a < 0, -1, 1) * rng.uniform(0.5, 2.0, size=shape)
        elif dt in ("u8", "u32"):
            a = rng.integers(0, 16, size=shape)
        else:
            a = rng.integers(-8, 9, size=shape)
        arrays.append(np.asarray(a).astype(np_dtype(dt)))
    return arrays


def wide(a):
    """Computation type: float64 for floats, int64 for integers, bool for pred."""
    if a.dtype == np.bool_:
        return a
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.int64)
    return a.astype(np.float64)


UNARY = {
    "neg": np.negative, "abs": np.abs, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x), "tanh": np.tanh, "logistic": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "sin": np.sin, "cos": np.cos, "floor": np.floor, "erf": np.vectorize(math.erf, otypes=[np.float64]),
}


def int_divide(a, b):
    q = np.abs(a) // np.abs(b)  # C semantics: truncate toward zero
    return np.where((a < 0) != (b < 0), -q, q)


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
    "minimum": np.minimum, "power": np.power,
}

COMPARE = {"EQ": np.equal, "NE": np.not_equal, "LT": np.less, "LE": np.less_equal,
           "GT": np.greater, "GE": np.greater_equal}


def align(x, like):
    """x (a Named with like's dim set) as an array in like's order; rank 0 broadcasts."""
    if not x.names:
        return np.broadcast_to(x.a, like.a.shape)
    return x.to(like.names)


def expected(case, arrays):
    """The expected outputs (one list per replica) as (array, names) pairs."""
    op = case["op"]
    kind = op["kind"]
    # Inputs the graph renames before using them (an update written along `tokens`).
    renames = op.get("rename_inputs", {})
    ins = [Named(a, [renames.get(d["name"], d["name"]) for d in inp["dims"]])
           for a, inp in zip(arrays[0], case["inputs"])]
    outs = case["outputs"]

    def one(fn):
        return [fn()]

    if kind == "identity":
        return [[ins[0]]]
    if kind == "constant":
        dt = np_dtype(outs[0]["dtype"])
        v = np.array(op["values"], dtype=np.float64)
        return [[Named(v.reshape(2, 3).astype(dt), ["rows", "cols"]), Named(np.array(v[3]).astype(dt), [])]]
    if kind == "iota":
        res = []
        for out in outs:
            shape = [d["extent"] for d in out["dims"]]
            names = [d["name"] for d in out["dims"]]
            along = "batch" if len(names) == 2 else "tokens"
            ax = names.index(along)
            idx = np.arange(shape[ax]).reshape([-1 if i == ax else 1 for i in range(len(shape))])
            res.append(Named(np.broadcast_to(idx, shape).astype(np_dtype(out["dtype"])), names))
        return [res]
    if kind == "convert":
        return [[Named(ins[0].a.astype(np_dtype(outs[0]["dtype"])), ins[0].names)]]
    if kind == "unary":
        x = ins[0]
        return [[Named(UNARY[op["fn"]](wide(x.a)), x.names)]]
    if kind == "binary":
        a, b = ins
        if len(a.names) == 0:
            a, b, swapped = b, a, True
        else:
            swapped = False
        av, bv = wide(a.a), wide(align(b, a))
        if swapped:
            av, bv = bv, av
        fn = op["fn"]
        if fn == "divide":
            r = int_divide(av, bv) if np.issubdtype(av.dtype, np.integer) else av / bv
        else:
            r = BINARY[fn](av, bv)
        if np.issubdtype(r.dtype, np.integer):  # wrap around as the dtype does
            r = r.astype(a.a.dtype)
        return [[Named(r, a.names)]]
    if kind == "compare":
        a, b = ins
        return [[Named(COMPARE[op["direction"]](wide(a.a), wide(align(b, a))), a.names)]]
    if kind == "select":
        p, a, b = ins
        return [[Named(np.where(align(p, a), a.a, align(b, a)), a.names)]]
    if kind == "broadcast":
        x = ins[0]
        out = outs[0]
        names = [d["name"] for d in out["dims"]]
        shape = [d["extent"] for d in out["dims"]]
        kept = [n for n in names if n in x.names]
        arr = x.to(kept).reshape([s if n in x.names else 1 for n, s in zip(names, shape)])
        return [[Named(np.broadcast_to(arr, shape), names)]]
    if kind == "transpose":
        return [[ins[0], ins[1]]]  # the data by name is unchanged
    if kind == "rename":
        x = ins[0]
        return [[Named(x.a, [op["to"] if n == op["from"] else n for n in x.names])]]
    if kind == "split":
        x = ins[0]
        ax = x.axis(op["from"])
        a_name, b_name = op["into"]
        ext = {d["name"]: d["extent"] for d in outs[0]["dims"]}
        shape = list(x.a.shape[:ax]) + [ext[a_name], ext[b_name]] + list(x.a.shape[ax + 1:])
        return [[Named(x.a.reshape(shape), x.names[:ax] + [a_name, b_name] + x.names[ax + 1:])]]
    if kind == "merge":
        x = ins[0]
        a_name, b_name = op["from"]
        rest = [n for n in x.names if n not in (a_name, b_name)]
        arr = x.to([a_name, b_name] + rest)
        return [[Named(arr.reshape((-1,) + arr.shape[2:]), [op["into"]] + rest)]]
    if kind == "dot":
        a, b = ins
        letters = {}
        for n in a.names + b.names:
            letters.setdefault(n, chr(ord("a") + len(letters)))
        out_names = [d["name"] for d in outs[0]["dims"]]
        expect = [n for n in a.names + b.names if n not in op["contract"]]
        assert sorted(set(expect)) == sorted(out_names), (expect, out_names)
        spec = "".join(letters[n] for n in a.names) + "," + "".join(letters[n] for n in b.names) + "->" + \
            "".join(letters[n] for n in out_names)
        r = np.einsum(spec, wide(a.a), wide(b.a))
        if np.issubdtype(r.dtype, np.integer):
            r = r.astype(a.a.dtype)
        return [[Named(r, out_names)]]
    if kind == "reduce":
        x = ins[0]
        res = []
        for part in op["parts"]:
            axes = tuple(x.axis(n) for n in part["dims"])
            names = [n for n in x.names if n not in part["dims"]]
            fn = part["fn"]
            if fn == "sum":
                r = np.sum(x.a, axis=axes, dtype=x.a.dtype) if np.issubdtype(x.a.dtype, np.integer) \
                    else np.sum(wide(x.a), axis=axes)
            elif fn == "mean":
                r = np.mean(wide(x.a), axis=axes)
            else:
                r = (np.max if fn == "max" else np.min)(wide(x.a), axis=axes)
            res.append(Named(r, names))
        return [res]
    if kind == "argmax":
        x = ins[0]
        return [[Named(np.argmax(x.a.astype(np.float64), axis=x.axis(n)).astype(np.int32),
                       [m for m in x.names if m != n]) for n in op["dims"]]]
    if kind == "softmax":
        x = ins[0]
        v = wide(x.a)

        def sm(z, ax):
            e = np.exp(z - z.max(axis=ax, keepdims=True))
            return e / e.sum(axis=ax, keepdims=True)
        ax_v, ax_t = x.axis("vocab"), x.axis("tokens")
        shifted = v - v.max(axis=ax_v, keepdims=True)
        lsm = shifted - np.log(np.exp(shifted).sum(axis=ax_v, keepdims=True))
        return [[Named(sm(v, ax_v), x.names), Named(lsm, x.names), Named(sm(v * 4.0, ax_t), x.names)]]
    if kind == "slice":
        x = ins[0]

        def sl(arr, p):
            idx = [slice(None)] * arr.a.ndim
            idx[arr.axis(p["dim"])] = slice(p["start"], p["limit"])
            return Named(arr.a[tuple(idx)], arr.names)
        res = []
        for part in op["parts"]:
            r = x
            for p in part.get("chain", [part]):
                r = sl(r, p)
            res.append(r)
        return [res]
    if kind == "dynamic_slice":
        x, start = ins
        ax = x.axis(op["dim"])
        s = int(np.clip(start.a, 0, x.a.shape[ax] - op["size"]))
        idx = [slice(None)] * x.a.ndim
        idx[ax] = slice(s, s + op["size"])
        return [[Named(x.a[tuple(idx)], x.names)]]
    if kind == "dynamic_update_slice":
        x, u, start = ins
        return [[Named(_dus(x, u, start, op["dim"]), x.names)]]
    if kind == "take":
        # take<D>(x, i): index i of D, D dropped; a tensor index is clamped into range.
        x, start = ins

        def take(t, dim, i):
            ax = t.axis(dim)
            i = int(np.clip(i, 0, t.a.shape[ax] - 1))
            return Named(np.take(t.a, i, axis=ax), [n for n in t.names if n != dim])
        s = int(start.a)
        return [[take(x, "tokens", 3), take(x, "batch", s), take(take(take(x, "batch", 2), "tokens", s), "hidden", 5)]]
    if kind == "concatenate":
        first = ins[0]
        return [[Named(np.concatenate([t.to(first.names) for t in ins], axis=first.axis(op["dim"])), first.names)]]
    if kind == "pad":
        x = ins[0]
        res = []
        for p in op["parts"]:
            ax = x.axis(p["dim"])
            arr = x.a
            low, high = p["low"], p["high"]
            if low < 0:
                arr = np.take(arr, range(-low, arr.shape[ax]), axis=ax)
                low = 0
            widths = [(0, 0)] * arr.ndim
            widths[ax] = (low, high)
            res.append(Named(np.pad(arr, widths, constant_values=np.array(p["value"]).astype(arr.dtype)), x.names))
        return [res]
    if kind == "gather":
        table, ids = ins
        ax = table.axis(op["dim"])
        ids_c = np.clip(ids.a, 0, table.a.shape[ax] - 1)
        rows = np.take(table.a, ids_c, axis=ax)  # table dims with ids dims inserted at ax
        names = table.names[:ax] + ids.names + table.names[ax + 1:]
        return [[Named(rows, names)]]
    if kind == "expression":
        fn = op["fn"]
        if fn == "number_operands":
            v = wide(ins[0].a)
            return [[Named((v * 0.5 + 1.0) / 2.0 - 3.0 * v, ins[0].names)]]
        if fn == "number_functions":
            v = wide(ins[0].a)
            names = ins[0].names
            return [[Named(np.maximum(v, 0.0), names), Named(np.minimum(0.5, v), names),
                     Named(np.abs(v) ** 2, names), Named(np.power(2.0, v), names),
                     Named(v < 0.25, names), Named(1 >= v, names)]]
        if fn == "number_functions_int":
            v = wide(ins[0].a)
            names = ins[0].names
            return [[Named(np.maximum(v, 0), names), Named(np.minimum(3, v), names), Named(v ** 2, names),
                     Named(10 - v, names), Named(v == 2, names), Named(v != 1, names)]]
        if fn == "tuple_outputs":
            x, i = ins
            return [[Named(np.exp(wide(x.a)), x.names), i, Named(wide(x.a) ** 2, x.names)]]
        if fn == "alias_cache_update":
            cache, new, pos = ins
            upd = Named(_dus(cache, new, pos, "tokens"), cache.names)
            return [[upd, Named(upd.a.sum(axis=upd.axis("tokens")), [n for n in upd.names if n != "tokens"])]]
        if fn == "dus_rows":
            cache, new, pos = ins
            names = ["batch", "tokens", "hidden"]
            out = cache.to(names).copy()
            u = new.to(["batch", "step", "hidden"])
            for b in range(out.shape[0]):
                s = int(np.clip(pos.a[b], 0, out.shape[1] - u.shape[1]))
                out[b, s:s + u.shape[1], :] = u[b]
            return [[Named(out, names)]]
    if kind in ("all_reduce", "all_gather"):
        return _collective(case, op, arrays)
    raise NotImplementedError(kind)


def _dus(x, u, start, dim):
    ax = x.axis(dim)
    u_arr = u.to(x.names)
    s = int(np.clip(start.a, 0, x.a.shape[ax] - u_arr.shape[ax]))
    out = x.a.copy()
    idx = [slice(None)] * x.a.ndim
    idx[ax] = slice(s, s + u_arr.shape[ax])
    out[tuple(idx)] = u_arr
    return out


def _collective(case, op, arrays):
    n = case["replicas"]
    groups = op.get("groups", [list(range(n))])
    names = [d["name"] for d in case["inputs"][0]["dims"]]
    res = [None] * n
    for g in groups:
        xs = [arrays[r][0] for r in g]
        if op["kind"] == "all_reduce":
            if op["fn"] == "sum":
                v = np.sum([wide(x) for x in xs], axis=0)
            else:
                v = np.max([wide(x) for x in xs], axis=0)
            if np.issubdtype(v.dtype, np.integer):
                v = v.astype(xs[0].dtype)
        else:
            v = np.concatenate(xs, axis=names.index(op["dim"]))
        for r in g:
            res[r] = [Named(v, names)]
    return res
