"""The one place that touches jaxlib's private XLA bindings.

They move between jaxlib releases, so everything version-dependent is here:
parsing HLO text, turning an HloModuleProto into StableHLO, compiling for N
replicas on the CPU, and executing with one input list per replica.
Tested with jaxlib 0.9.x (`_jax.hlo_module_from_text`, `compile_and_load`);
jaxlib 0.10 dropped the HLO text parser.
"""
import os

# N fake CPU devices for the collectives; must be set before jax initialises.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

import numpy as np  # noqa: E402
import jax  # noqa: E402

# Keep 64-bit inputs 64-bit when they are put on a device.
jax.config.update("jax_enable_x64", True)
from jax._src.lib import xla_client as _xc  # noqa: E402

try:  # jaxlib >= 0.5
    from jax._src.lib import _jax as _ext
except ImportError:  # older jaxlib
    _ext = _xc._xla


def _hlo_module_from_text(text):
    for owner in (_ext, getattr(_xc, "_xla", None)):
        fn = getattr(owner, "hlo_module_from_text", None)
        if fn is not None:
            return fn(text)
    raise RuntimeError(f"jaxlib {jax.__version__} has no HLO text parser; use jax/jaxlib 0.9.x")


def proto_from_text(text):
    """HLO text -> serialized HloModuleProto, by XLA's own parser."""
    return _hlo_module_from_text(text).as_serialized_hlo_module_proto()


def parse_proto(proto):
    """Loads a serialized HloModuleProto with XLA (raises on a malformed module)."""
    return _ext.HloModule.from_serialized_hlo_module_proto(proto)


def load(path):
    """A .hlo (text) or .pb (proto) file as proto bytes that XLA has parsed."""
    with open(path, "rb") as f:
        data = f.read()
    proto = proto_from_text(data.decode()) if path.endswith(".hlo") else data
    parse_proto(proto)
    return proto


# XLA's CPU backend optimization level (LLVM's) that compile_module asks for when
# not given one: None leaves XLA's own (3). The test suites set FAST_COMPILE: they
# check what XLA computes, not how fast, a module compiles in half the time at
# level 0, and compiling is most of their time. HLO passes (fusion, layout) run at
# every level. The levels round some reductions differently, so a check that
# compares two long runs (data-parallel against one process over 20 Adam steps)
# compiles both at XLA_DEFAULT.
default_level = None
FAST_COMPILE = 0
XLA_DEFAULT = 3


def compile_module(proto, replicas=1, level=None):
    devices = jax.devices("cpu")[:replicas]
    if len(devices) < replicas:
        raise RuntimeError(f"need {replicas} CPU devices, have {len(devices)} (XLA_FLAGS={os.environ.get('XLA_FLAGS')})")
    mlir = _ext.mlir.hlo_to_stablehlo(proto)
    options = _ext.CompileOptions()
    options.num_replicas = replicas
    build = options.executable_build_options
    build.num_replicas = replicas
    build.device_assignment = _ext.DeviceAssignment.create(np.arange(replicas).reshape(replicas, 1))
    if level is None:
        level = default_level
    if level is not None:
        build.debug_options.xla_backend_optimization_level = level
    client = devices[0].client
    compile_fn = getattr(client, "compile_and_load", None) or client.compile
    return compile_fn(mlir, _ext.DeviceList(tuple(devices)), options), devices


def place(compiled, inputs):
    """inputs[r][k] on the compiled module's devices, once (for timing runs)."""
    _, devices = compiled
    replicas = len(devices)
    args = []
    for k in range(len(inputs[0])):
        per_device = [jax.device_put(inputs[r][k], devices[r]) for r in range(replicas)]
        args.append(per_device[0] if replicas == 1 else _stack(per_device, devices))
    return args


def run_placed(compiled, args):
    """Runs on placed arguments and waits; returns outputs[k][r] as device arrays."""
    results = compiled[0].execute_sharded(args).disassemble_into_single_device_arrays()
    for out in results:
        for a in out:
            a.block_until_ready()
    return results


def execute(compiled, inputs):
    """inputs[r][k]: argument k of replica r. Returns outputs[r][k] as numpy arrays."""
    results = run_placed(compiled, place(compiled, inputs))
    return [[np.asarray(out[r]) for out in results] for r in range(len(compiled[1]))]


def _stack(per_device, devices):
    """Per-replica arrays as one array with an unstacked leading replica axis."""
    from jax._src import sharding_specs as ss
    from jax._src.sharding_impls import PmapSharding

    shape = per_device[0].shape
    spec = ss.ShardingSpec((ss.Unstacked(len(devices)),) + (ss.NoSharding(),) * len(shape), (ss.ShardedAxis(0),))
    sharding = PmapSharding(np.array(devices), spec)
    return jax.make_array_from_single_device_arrays((len(devices),) + shape, sharding, per_device)


def run_file(path, inputs, replicas=1):
    return execute(compile_module(load(path), replicas), inputs)
