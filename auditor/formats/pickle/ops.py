"""The pickle opcode table (protocols 0-5) as data: code, name, argument kind, protocol.

The machine in `pickle_machine` reads arguments by kind and dispatches on
the name, so the format is described once, here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Arg(enum.Enum):
    NONE = "none"
    U1 = "uint1"
    U2 = "uint2"
    U4 = "uint4"
    I4 = "int4"
    U8 = "uint8"
    F8 = "float8"
    LINE = "line"  # text up to a newline
    LINES2 = "two lines"  # GLOBAL and INST: module and name
    LEN1 = "uint1-length bytes"
    LEN4 = "uint4-length bytes"
    LEN4S = "int4-length bytes"  # a negative length is an error
    LEN8 = "uint8-length bytes"


@dataclass(frozen=True)
class Op:
    code: int
    name: str
    arg: Arg
    proto: int


OPS: tuple[Op, ...] = (
    Op(ord("("), "MARK", Arg.NONE, 0),
    Op(ord("."), "STOP", Arg.NONE, 0),
    Op(ord("0"), "POP", Arg.NONE, 0),
    Op(ord("1"), "POP_MARK", Arg.NONE, 1),
    Op(ord("2"), "DUP", Arg.NONE, 0),
    Op(ord("F"), "FLOAT", Arg.LINE, 0),
    Op(ord("I"), "INT", Arg.LINE, 0),
    Op(ord("J"), "BININT", Arg.I4, 1),
    Op(ord("K"), "BININT1", Arg.U1, 1),
    Op(ord("L"), "LONG", Arg.LINE, 0),
    Op(ord("M"), "BININT2", Arg.U2, 1),
    Op(ord("N"), "NONE", Arg.NONE, 0),
    Op(ord("P"), "PERSID", Arg.LINE, 0),
    Op(ord("Q"), "BINPERSID", Arg.NONE, 1),
    Op(ord("R"), "REDUCE", Arg.NONE, 0),
    Op(ord("S"), "STRING", Arg.LINE, 0),
    Op(ord("T"), "BINSTRING", Arg.LEN4S, 1),
    Op(ord("U"), "SHORT_BINSTRING", Arg.LEN1, 1),
    Op(ord("V"), "UNICODE", Arg.LINE, 0),
    Op(ord("X"), "BINUNICODE", Arg.LEN4, 1),
    Op(ord("a"), "APPEND", Arg.NONE, 0),
    Op(ord("b"), "BUILD", Arg.NONE, 0),
    Op(ord("c"), "GLOBAL", Arg.LINES2, 0),
    Op(ord("d"), "DICT", Arg.NONE, 0),
    Op(ord("}"), "EMPTY_DICT", Arg.NONE, 1),
    Op(ord("e"), "APPENDS", Arg.NONE, 1),
    Op(ord("g"), "GET", Arg.LINE, 0),
    Op(ord("h"), "BINGET", Arg.U1, 1),
    Op(ord("i"), "INST", Arg.LINES2, 0),
    Op(ord("j"), "LONG_BINGET", Arg.U4, 1),
    Op(ord("l"), "LIST", Arg.NONE, 0),
    Op(ord("]"), "EMPTY_LIST", Arg.NONE, 1),
    Op(ord("o"), "OBJ", Arg.NONE, 1),
    Op(ord("p"), "PUT", Arg.LINE, 0),
    Op(ord("q"), "BINPUT", Arg.U1, 1),
    Op(ord("r"), "LONG_BINPUT", Arg.U4, 1),
    Op(ord("s"), "SETITEM", Arg.NONE, 0),
    Op(ord("t"), "TUPLE", Arg.NONE, 0),
    Op(ord(")"), "EMPTY_TUPLE", Arg.NONE, 1),
    Op(ord("u"), "SETITEMS", Arg.NONE, 1),
    Op(ord("G"), "BINFLOAT", Arg.F8, 1),
    Op(0x80, "PROTO", Arg.U1, 2),
    Op(0x81, "NEWOBJ", Arg.NONE, 2),
    Op(0x82, "EXT1", Arg.U1, 2),
    Op(0x83, "EXT2", Arg.U2, 2),
    Op(0x84, "EXT4", Arg.I4, 2),
    Op(0x85, "TUPLE1", Arg.NONE, 2),
    Op(0x86, "TUPLE2", Arg.NONE, 2),
    Op(0x87, "TUPLE3", Arg.NONE, 2),
    Op(0x88, "NEWTRUE", Arg.NONE, 2),
    Op(0x89, "NEWFALSE", Arg.NONE, 2),
    Op(0x8A, "LONG1", Arg.LEN1, 2),
    Op(0x8B, "LONG4", Arg.LEN4S, 2),
    Op(ord("B"), "BINBYTES", Arg.LEN4, 3),
    Op(ord("C"), "SHORT_BINBYTES", Arg.LEN1, 3),
    Op(0x8C, "SHORT_BINUNICODE", Arg.LEN1, 4),
    Op(0x8D, "BINUNICODE8", Arg.LEN8, 4),
    Op(0x8E, "BINBYTES8", Arg.LEN8, 4),
    Op(0x8F, "EMPTY_SET", Arg.NONE, 4),
    Op(0x90, "ADDITEMS", Arg.NONE, 4),
    Op(0x91, "FROZENSET", Arg.NONE, 4),
    Op(0x92, "NEWOBJ_EX", Arg.NONE, 4),
    Op(0x93, "STACK_GLOBAL", Arg.NONE, 4),
    Op(0x94, "MEMOIZE", Arg.NONE, 4),
    Op(0x95, "FRAME", Arg.U8, 4),
    Op(0x96, "BYTEARRAY8", Arg.LEN8, 5),
    Op(0x97, "NEXT_BUFFER", Arg.NONE, 5),
    Op(0x98, "READONLY_BUFFER", Arg.NONE, 5),
)

BY_CODE: dict[int, Op] = {op.code: op for op in OPS}
HIGHEST_PROTOCOL = 5
