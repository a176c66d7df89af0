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
            elif dom == "above_minus_one":  # log1p's domain, with values near 0 too
                a = np.where(rng.integers(0, 4, size=shape) == 0, a * 1e-4, rng.uniform(-0.95, 3.0, size=shape))
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
    "sign": np.sign, "expm1": np.expm1, "log1p": np.log1p, "bitwise_not": np.invert,
}


def int_divide(a, b):
    q = np.abs(a) // np.abs(b)  # C semantics: truncate toward zero
    return np.where((a < 0) != (b < 0), -q, q)


BINARY = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum,
    "minimum": np.minimum, "power": np.power,
    "bitwise_and": np.bitwise_and, "bitwise_or": np.bitwise_or, "bitwise_xor": np.bitwise_xor,
}

def _bits_of(a, dtype):
    """a's elements (wide integers of dtype's values) as dtype's bit patterns, in uint64."""
    unsigned = np.dtype(f"u{np.dtype(dtype).itemsize}")
    return a.astype(dtype).view(unsigned).astype(np.uint64)


def _shift(kind, a, b, dtype):
    """XLA's shifts on dtype's own width: the amount read as unsigned, and one of
    the width or more shifting every bit out (0, or the sign fill)."""
    width = np.dtype(dtype).itemsize * 8
    x, n = _bits_of(a, dtype), _bits_of(b, dtype)
    out_of_range = n >= width
    n = np.minimum(n, np.uint64(width - 1))
    if kind == "shift_left":
        r = np.where(out_of_range, 0, (x << n) & np.uint64(2 ** width - 1))
    elif kind == "shift_right_logical":
        r = np.where(out_of_range, 0, x >> n)
    else:  # arithmetic: on the value read as signed
        signed = a.astype(dtype).view(f"i{np.dtype(dtype).itemsize}").astype(np.int64)
        return np.where(out_of_range, np.where(signed < 0, -1, 0), signed >> n.astype(np.int64)).astype(np.int64)
    return r.astype(np.uint64).astype(np.int64)


SHIFTS = ("shift_left", "shift_right_logical", "shift_right_arithmetic")


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
    if kind == "bitcast_convert":
        return [[Named(ins[0].a.view(np_dtype(outs[0]["dtype"])), ins[0].names)]]
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
        elif fn in SHIFTS:
            r = _shift(fn, av, bv, a.a.dtype)
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
    if kind == "scatter":
        return [[_scatter_add(*ins, op["dim"])]]
    if kind == "random":
        return [[_random(case, op, part, out, ins) for part, out in zip(op["parts"], outs)]]
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
    if kind == "gradient":
        return [_gradient(case, arrays[0])]
    raise NotImplementedError(kind)


def _gradient(case, arrays, step=1e-5):
    """d(loss)/d(each input named in op["wrt"]) by central differences, where loss is
    the sum over the forward outputs k of sum(y_k * zz_cotangent_k) and y is this
    module's forward reference of op["of"] (computed in float64)."""
    op = case["op"]
    cot = {inp["name"]: Named(a, [d["name"] for d in inp["dims"]])
           for inp, a in zip(case["inputs"], arrays) if inp["name"].startswith("zz_cotangent_")}
    inputs = [inp for inp in case["inputs"] if not inp["name"].startswith("zz_cotangent_")]
    xs = [np.asarray(a) for inp, a in zip(case["inputs"], arrays) if not inp["name"].startswith("zz_cotangent_")]
    forward = dict(case, op=op["of"], inputs=inputs, outputs=op["forward_outputs"], replicas=1)

    def loss(values):
        ys = expected(forward, [values])[0]
        return sum(float((wide(y.a) * wide(cot[f"zz_cotangent_{k}"].to(y.names))).sum()) for k, y in enumerate(ys))

    grads = []
    for name in op["wrt"]:
        j = [inp["name"] for inp in inputs].index(name)
        x = xs[j].astype(np.float64)
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            saved = x[idx]
            values = list(xs)
            x[idx] = saved + step
            values[j] = x
            up = loss(values)
            x[idx] = saved - step
            down = loss(values)
            x[idx] = saved
            g[idx] = (up - down) / (2 * step)
        grads.append(Named(g, [d["name"] for d in inputs[j]["dims"]]))
    return grads


def _scatter_add(table, ids, updates, dim):
    """table with each update added at the row its index picks along dim, in the
    indices' order; an index outside [0, extent) is skipped."""
    rest = [n for n in table.names if n != dim]
    out = wide(table.to([dim] + rest)).copy()
    upd = wide(updates.to(rest + ids.names)).reshape(out.shape[1:] + (-1,))
    for p, row in enumerate(ids.a.reshape(-1).astype(np.int64)):
        if 0 <= row < out.shape[0]:
            out[row] += upd[..., p]
    if np.issubdtype(out.dtype, np.integer):
        out = out.astype(table.a.dtype)  # wrap as the dtype does
    return Named(out, [dim] + rest)


_MASK32 = np.uint64(0xFFFFFFFF)


def threefry_2x32(k0, k1, c0, c1):
    """Threefry-2x32, 20 rounds (Salmon et al. 2011, Random123's threefry2x32),
    on uint32 words held in uint64 arrays: the two output words."""
    k0, k1 = np.uint64(k0), np.uint64(k1)
    keys = [k0, k1, k0 ^ k1 ^ np.uint64(0x1BD11BDA)]
    rotations = [(13, 15, 26, 6), (17, 29, 16, 24)]
    x0, x1 = (c0 + keys[0]) & _MASK32, (c1 + keys[1]) & _MASK32
    for group in range(1, 6):
        for r in rotations[(group - 1) % 2]:
            x0 = (x0 + x1) & _MASK32
            x1 = ((x1 << np.uint64(r)) | (x1 >> np.uint64(32 - r))) & _MASK32
            x1 ^= x0
        x0 = (x0 + keys[group % 3]) & _MASK32
        x1 = (x1 + keys[(group + 1) % 3] + np.uint64(group)) & _MASK32
    return x0, x1


def _random(case, op, part, out, ins):
    """Element p of an output: Threefry of counter offset + p (row-major in the
    output's order); bits xor the two words, uniforms keep JAX's mantissa bits."""
    names = [d["name"] for d in out["dims"]]
    shape = tuple(d["extent"] for d in out["dims"])
    by_name = {inp["name"]: x for inp, x in zip(case["inputs"], ins)}
    k0, k1 = (int(by_name["k0"].a), int(by_name["k1"].a)) if op["key"] == "inputs" else op["key"]
    offset = part["offset"]
    offset = int(by_name[offset].a) if isinstance(offset, str) else int(offset)
    counters = np.arange(int(np.prod(shape)), dtype=np.uint64) + np.uint64(offset)
    first, second = threefry_2x32(k0, k1, counters >> np.uint64(32), counters & _MASK32)
    if part["fn"] == "bits":
        return Named((first ^ second).astype(np.uint32).reshape(shape), names)
    if part["fn"] == "round_bf16":  # x's bits plus the low 16 random bits, truncated to bf16; NaNs kept
        x = by_name["x"].to(names).astype(np.float32)
        noise = (first ^ second) & np.uint64(0xFFFF)
        summed = (x.view(np.uint32).reshape(-1).astype(np.uint64) + noise) & np.uint64(0xFFFF0000)
        value = summed.astype(np.uint32).view(np.float32).reshape(shape).astype(np.float64)
        return Named(np.where(np.isnan(x), x.astype(np.float64), value), names)
    bits = first ^ second
    dt = out["dtype"]
    if dt == "f64":
        value = (((first << np.uint64(32)) | second) >> np.uint64(12)).astype(np.float64) * 2.0 ** -52
    else:
        mantissa, taken = {"f32": (23, 32), "f16": (10, 16), "bf16": (7, 8)}[dt]
        value = ((bits & np.uint64(2 ** taken - 1)) >> np.uint64(taken - mantissa)).astype(np.float64) * 2.0 ** -mantissa
    return Named(value.reshape(shape), names)


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
