#!/usr/bin/env python3
"""Writes src/forward.rs of a decorator backend: the op traits of burn-backend 0.21, every
method forwarded to the backend it wraps (tanas-cpu: Flex; tanas-cuda: burn-cuda's CubeBackend).

Usage: python3 tools/forward.py BURN_BACKEND_SRC_DIR > src/forward.rs && cargo fmt -p tanas-cpu
       python3 tools/forward.py BURN_BACKEND_SRC_DIR cuda > ../tanas-cuda/src/forward.rs
(BURN_BACKEND_SRC_DIR is ~/.cargo/registry/src/*/burn-backend-0.21.0/src.)
The forwarded methods are one signature line each inside a `to_flex!` block of their impl;
the macro writes the body that calls Flex's method. Methods that tanas-cpu implements itself
are listed in OWN and call crate::MODULE::NAME.
A method whose signature holds a struct generic over the backend (MaxPool1dWithIndices<B>,
...) cannot be forwarded as it is: a required one moves the fields (CONVERT), a defaulted one
keeps burn's default (built on the forwarded ops); any other is listed on stderr.
"""
import re
import sys

TRAITS = [
    ("backend/ops/tensor.rs", "FloatTensorOps"),
    ("backend/ops/int_tensor.rs", "IntTensorOps"),
    ("backend/ops/bool_tensor.rs", "BoolTensorOps"),
    ("backend/ops/modules/base.rs", "ModuleOps"),
    ("backend/ops/activation.rs", "ActivationOps"),
    ("backend/ops/qtensor.rs", "QTensorOps"),
    ("backend/ops/transaction.rs", "TransactionOps"),
]

# Per decorator: the type it is, the backend it wraps (with the lines that import both), and
# the methods it implements itself: trait -> (the module that has them, their names).
PROFILES = {
    "cpu": {
        "self": "Cpu",
        "inner": "Flex",
        "uses": ["use burn_flex::Flex;", "", "use crate::Cpu;"],
        "crate": "tanas-cpu",
        "own": {
            "FloatTensorOps": ("tensor", {"float_reshape", "float_add", "float_sub", "float_mul", "float_div"}),
            "ModuleOps": ("module", {
                "conv2d", "conv2d_x_backward", "conv2d_weight_backward", "conv2d_bias_backward",
                "max_pool2d", "max_pool2d_with_indices", "max_pool2d_with_indices_backward",
                "avg_pool2d", "avg_pool2d_backward",
                "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "unfold4d",
            }),
        },
    },
    "cuda": {
        "self": "CudnnCuda",
        "inner": "Inner",
        "uses": ["use crate::backend::{CudnnCuda, Inner};"],
        "crate": "tanas-cuda",
        "own": {
            "ModuleOps": ("conv", {"conv2d", "conv2d_x_backward", "conv2d_weight_backward"}),
        },
    },
}
PROFILE = PROFILES[sys.argv[2] if len(sys.argv) > 2 else "cpu"]
OWN = PROFILE["own"]
INNER = PROFILE["inner"]

# Required methods whose signature holds a struct generic over the backend: the same fields,
# moved from one backend's struct into the other's.
CONVERT = {
    "deform_conv2d_backward": f"let r = <{INNER} as ModuleOps<{INNER}>>::deform_conv2d_backward(x, offset, weight, mask, bias, output_grad, options);\n"
    "        DeformConv2dBackward::new(r.x_grad, r.offset_grad, r.weight_grad, r.mask_grad, r.bias_grad)",
    "quantize": f"<{INNER} as QTensorOps<{INNER}>>::quantize(tensor, scheme, QuantizationParametersPrimitive {{ scales: qparams.scales }})",
    "max_pool2d_with_indices": f"let r = <{INNER} as ModuleOps<{INNER}>>::max_pool2d_with_indices(x, kernel_size, stride, padding, dilation, ceil_mode);\n"
    "        MaxPool2dWithIndices::new(r.output, r.indices)",
    "max_pool2d_with_indices_backward": f"let r = <{INNER} as ModuleOps<{INNER}>>::max_pool2d_with_indices_backward(x, kernel_size, stride, padding, dilation, ceil_mode, output_grad, indices);\n"
    "        MaxPool2dBackward { x_grad: r.x_grad }",
}

GENERIC_STRUCTS = ["AlphaCtx", "DeformConv2dBackward", "MaxPool1dBackward", "MaxPool1dWithIndices",
                   "MaxPool2dBackward", "MaxPool2dWithIndices", "QuantizationParametersPrimitive",
                   "TransactionPrimitive", "TensorPrimitive", "BasicOps", "TensorKind",
                   "Conv2dBackward", "Conv3dBackward", "InterpolateBackward"]


def trait_body(src, name):
    m = re.search(r"pub trait %s<B: Backend>[^{]*\{" % name, src)
    i = m.end()
    depth = 1
    j = i
    while depth:
        c = src[j]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        j += 1
    return src[i:j - 1]


def strip_comments(s):
    s = re.sub(r"//[^\n]*", "", s)
    return s


def methods(body):
    body = strip_comments(body)
    out = []
    i = 0
    depth = 0
    while i < len(body):
        c = body[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif depth == 0 and body.startswith("fn ", i) and (i == 0 or not body[i - 1].isalnum()):
            # signature up to '{' or ';' at paren depth 0
            j = i
            p = 0
            while True:
                d = body[j]
                if d in "([":
                    p += 1
                elif d in ")]":
                    p -= 1
                elif p == 0 and d in "{;":
                    break
                j += 1
            sig = " ".join(body[i:j].split())
            out.append((sig, body[j] == ";"))
            i = j
            continue
        i += 1
    return out


def split_top(s):
    parts, cur, p = [], "", 0
    for c in s:
        if c in "(<[":
            p += 1
        elif c in ")>]":
            p -= 1
        if c == "," and p == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += c
    if cur.strip():
        parts.append(cur)
    return [x.strip() for x in parts if x.strip()]


def arguments(sig):
    """The text between the parentheses of the argument list."""
    i = sig.index("(")
    depth = 0
    for j in range(i, len(sig)):
        depth += {"(": 1, ")": -1}.get(sig[j], 0)
        if depth == 0:
            return sig[i + 1:j]
    raise ValueError(sig)


def main():
    root = sys.argv[1]
    me, inner = PROFILE["self"], INNER
    print("// Generated by tanas-cpu's tools/forward.py from burn-backend 0.21.0's op traits: do not edit.")
    print(f"// Every method forwards to {inner} but the ones {PROFILE['crate']} implements itself.")
    print("#![allow(missing_docs, unused_variables, clippy::too_many_arguments)]")
    print()
    print("use core::ops::Range;")
    print()
    print("use burn_backend::ops::*;")
    print("use burn_backend::quantization::{QuantScheme, QuantizationParametersPrimitive};")
    print("use burn_backend::tensor::{BoolTensor, Device, FloatTensor, IntTensor, QuantizedTensor};")
    print("use burn_backend::{")
    print("    BoolDType, Distribution, ExecutionError, FloatDType, IntDType, Scalar, Shape, Slice,")
    print("    TensorData,")
    print("};")
    for line in PROFILE["uses"]:
        print(line)
    print()
    print(f"/// `TRAIT; fn NAME(ARG: TYPE, ...) -> RET; ...`: each method calls {inner}'s method of TRAIT")
    print("/// with its arguments.")
    print("macro_rules! to_inner {")
    print("    ($trait:ident; $(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {")
    print("        $(fn $name($($arg: $ty),*) $(-> $ret)? {")
    print(f"            <{inner} as $trait<{inner}>>::$name($($arg),*)")
    print("        })*")
    print("    };")
    print("}")
    print()
    print(f"/// `MODULE; fn NAME(ARG: TYPE, ...) -> RET; ...`: each method calls {PROFILE['crate']}'s")
    print("/// `crate::MODULE::NAME` with its arguments.")
    print("macro_rules! to_own {")
    print("    ($module:ident; $(fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {")
    print("        $(fn $name($($arg: $ty),*) $(-> $ret)? {")
    print("            crate::$module::$name($($arg),*)")
    print("        })*")
    print("    };")
    print("}")
    manual = []
    for path, trait in TRAITS:
        src = open(f"{root}/{path}").read()
        body = trait_body(src, trait)
        own_module, own = OWN.get(trait, ("", set()))
        print(f"\nimpl {trait}<{me}> for {me} {{")
        forwarded, owned, written = [], [], []
        for sig, required in methods(body):
            name = re.match(r"fn (\w+)", sig).group(1)
            if name in CONVERT and name not in OWN.get(trait, ("", set()))[1]:
                written.append("    " + re.sub(r"\bB\b", "Self", sig) + " {\n        " + CONVERT[name] + "\n    }")
                continue
            if any(re.search(r"\b%s<" % g, sig) for g in GENERIC_STRUCTS) and name not in own:
                # A defaulted method keeps burn's default (on top of the forwarded ops);
                # a required one is written by hand.
                if required:
                    manual.append((trait, name, sig))
                continue
            params = split_top(arguments(sig))
            names = [p.split(":")[0].strip() for p in params]
            names = [n.replace("mut ", "") for n in names]
            sig2 = re.sub(r"\bB\b", "Self", sig).replace("crate::", "burn_backend::")
            one_line = re.sub(r",\s*\)", ")", re.sub(r"\(\s+", "(", sig2))
            (owned if name in own else forwarded).append(f"        {one_line};")
        for macro, target, lines in (("to_inner", trait, forwarded), ("to_own", own_module, owned)):
            if lines:
                print(f"    {macro}! {{")
                print(f"        {target};")
                print("\n".join(lines))
                print("    }")
        for w in written:
            print(w)
        print("}")
    sys.stderr.write("MANUAL:\n" + "\n".join(f"{t}::{n}: {s}" for t, n, s in manual) + "\n")


main()
