"""Bit-counting intrinsics for numba kernels, shared by the estimation and simulation kernels.

Each compiles to one instruction (POPCNT, TZCNT/BSF, LZCNT/BSR) where the CPU has it.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = ["leading_zeros", "popcount", "trailing_zeros"]


@intrinsic
def popcount(typingctx, x):
    """Number of set bits of a uint64 (LLVM ``ctpop``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@intrinsic
def trailing_zeros(typingctx, x):
    """Index of the lowest set bit of a nonzero uint64 (LLVM ``cttz``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.cttz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@intrinsic
def leading_zeros(typingctx, x):
    """63 minus the index of the highest set bit of a nonzero uint64 (LLVM ``ctlz``)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen
