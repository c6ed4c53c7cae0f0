#!/usr/bin/env python3
"""Writes the starting corpora under fuzz/corpus/<target>/ from the project's test fixtures:
the captured PostgreSQL 15 pgoutput messages (src/capture/postgres/testdata), the binlog byte
builders of src/capture/mysql/fixtures.rs and the hand-built binary JSON of jsonb.rs's tests,
re-expressed here, and spill lines in the format SpillBuffer writes. Run once; the fuzzer and
`cargo fuzz cmin` take it from there."""
import hashlib, json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "fuzz", "corpus")

def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

u16 = lambda n: struct.pack("<H", n)
u32 = lambda n: struct.pack("<I", n)
u64 = lambda n: struct.pack("<Q", n)
be16 = lambda n: struct.pack(">h", n)
be32 = lambda n: struct.pack(">I", n)
be64 = lambda n: struct.pack(">Q", n)
cstr = lambda s: s.encode() + b"\0"

# --- pgoutput: frames of u16le length + message -------------------------------------------------
frame = lambda m: u16(len(m)) + m
pg = [bytes.fromhex(l.strip()) for l in open(os.path.join(ROOT, "src/capture/postgres/testdata/pg15_insert.hex")) if l.strip()]
put("pgoutput", b"".join(frame(m) for m in pg))
for m in pg:
    put("pgoutput", frame(m))

def col(key, name, oid, mod=-1):
    return bytes([1 if key else 0]) + cstr(name) + be32(oid) + struct.pack(">i", mod)
def rel(oid, cols, xid=None):
    b = b"R" + (be32(xid) if xid is not None else b"") + be32(oid) + cstr("public") + cstr("t") + b"d" + be16(len(cols))
    return b + b"".join(cols)
def tup(vals):
    b = be16(len(vals))
    for v in vals:
        if v is None: b += b"n"
        elif v == "u": b += b"u"
        else: b += b"t" + be32(len(v)) + v.encode()
    return b
cols = [col(True, "id", 23), col(False, "e", 90001), col(False, "d", 90002), col(False, "a", 90003),
        col(False, "b", 90004), col(False, "da", 90005), col(False, "ts", 1184), col(False, "n", 1700),
        col(False, "j", 3802), col(False, "ia", 1007), col(False, "by", 17), col(False, "iv", 1186)]
row = ["1", "red", "7", "{1,2,NULL}", '{a;"b c";NULL}', "{{1,2},{3,4}}", "2024-05-01 12:34:56.789+00",
       "-12.50", '{"k": [1, 2]}', "{1,2}", "\\x00ff", "1 year 2 mons 3 days 04:05:06.5"]
begin = b"B" + be64(0x1000) + be64(0) + be32(7)
commit = b"C" + b"\0" + be64(0x1000) + be64(0x1010) + be64(0)
ins = b"I" + be32(16385) + b"N" + tup(row)
upd = b"U" + be32(16385) + b"O" + tup(row) + b"N" + tup(["1"] + ["u"] * 11)
dele = b"D" + be32(16385) + b"K" + tup(["1"] + [None] * 11)
trunc = b"T" + be32(1) + b"\0" + be32(16385)
origin = b"O" + be64(0x900) + cstr("tandem_peer")
typ = b"Y" + be32(90001) + cstr("public") + cstr("mood")
put("pgoutput", b"".join(frame(m) for m in [begin, origin, typ, rel(16385, cols), ins, upd, dele, trunc, commit]))
msg = b"M" + b"\1" + be64(0x1000) + cstr("prefix") + be32(3) + b"abc"
put("pgoutput", b"".join(frame(m) for m in [begin, msg, commit]))
# streamed (protocol v2): start, rows with xids, stop, commit; and an abort
ss = b"S" + be32(9) + b"\1"
se = b"E"
sc = b"c" + be32(9) + b"\0" + be64(0x2000) + be64(0x2010) + be64(0)
sa = b"A" + be32(9) + be32(10)
ins_s = b"I" + be32(9) + be32(16385) + b"N" + tup(row)
put("pgoutput", b"".join(frame(m) for m in [ss, rel(16385, cols, xid=9), ins_s, se, sc]))
put("pgoutput", b"".join(frame(m) for m in [ss, ins_s, se, sa]))

# --- binlog fixtures (src/capture/mysql/fixtures.rs) -------------------------------------------
def lenenc(n):
    if n <= 250: return bytes([n])
    if n <= 0xFFFF: return b"\xfc" + struct.pack("<H", n)
    if n <= 0xFFFFFF: return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)
def table_map(tid, schema, name, columns, optional):
    b = u64(tid)[:6] + b"\1\0" + bytes([len(schema)]) + schema.encode() + b"\0" + bytes([len(name)]) + name.encode() + b"\0"
    b += lenenc(len(columns)) + bytes(t for t, _ in columns)
    meta = b"".join(m for _, m in columns)
    b += lenenc(len(meta)) + meta + b"\xff" * ((len(columns) + 7) // 8)
    for t, v in optional:
        b += bytes([t]) + lenenc(len(v)) + v
    return b
def column_names(names):
    return b"".join(lenenc(len(n)) + n.encode() for n in names)
def rows_event(tid, v2, update, ncols, rows):
    b = u64(tid)[:6] + b"\1\0" + (u16(2) if v2 else b"") + lenenc(ncols)
    bm = b"\xff" * ((ncols + 7) // 8)
    b += bm + (bm if update else b"")
    return b + b"".join(rows)
def query(schema, sql):
    return b"\0" * 8 + bytes([len(schema)]) + b"\0\0" + u16(0) + schema.encode() + b"\0" + sql.encode()
def mysql_gtid(sid, gno, micros):
    return b"\1" + sid + u64(gno) + b"\2" + u64(0) + u64(1) + u64(micros)[:7] + lenenc(100)
def maria_gtid(seq, domain, flags2):
    return u64(seq) + u32(domain) + bytes([flags2])
def gtid_list(entries):
    return u32(len(entries)) + b"".join(u32(d) + u32(s) + u64(q) for d, s, q in entries)

def sample_doc():
    arr = bytearray([2, 0, 0, 0]); arr += bytes([0x04, 1, 0]); arr += bytes([0x0C, 0, 0])
    arr[8:10] = u16(len(arr)); arr += bytes([1, ord("x")]); arr[2:4] = u16(len(arr))
    obj = bytearray([2, 0, 0, 0]); ks = 4 + 2 * 4 + 2 * 3
    obj += u16(ks) + u16(1) + u16(ks + 1) + u16(1) + bytes([0x05, 1, 0]) + bytes([0x02]) + u16(ks + 2) + b"ab" + arr
    obj[2:4] = u16(len(obj))
    return bytes([0x00]) + bytes(obj)

SID = bytes.fromhex("3e11fa4771ca11e19e33c80aa9429562")
# (type code, metadata, one encoded non-NULL value) per column type, from types_tests.rs' layouts
T = dict(TINY=1, SHORT=2, LONG=3, FLOAT=4, DOUBLE=5, NULL=6, TIMESTAMP=7, LONGLONG=8, INT24=9, DATE=10,
         TIME=11, DATETIME=12, YEAR=13, VARCHAR=15, BIT=16, TIMESTAMP2=17, DATETIME2=18, TIME2=19,
         JSON=245, NEWDECIMAL=246, ENUM=247, SET=248, BLOB=252, VAR_STRING=253, STRING=254, GEOMETRY=255)
doc = sample_doc()
types = [
    (T["TINY"], b"", b"\xff"), (T["SHORT"], b"", u16(0x8001)), (T["INT24"], b"", b"\x01\x02\x83"),
    (T["LONG"], b"", u32(42)), (T["LONGLONG"], b"", u64(2**63 + 5)), (T["FLOAT"], b"", struct.pack("<f", 1.5)),
    (T["DOUBLE"], b"", struct.pack("<d", -2.25)), (T["NEWDECIMAL"], bytes([10, 2]), bytes([0x80, 0, 0, 0x30, 0x39, 0x22])),
    (T["YEAR"], b"", bytes([124])), (T["DATE"], b"", bytes([0xA1, 0xB4, 0x0F])),
    (T["TIME"], b"", (123456).to_bytes(3, "little")), (T["DATETIME"], b"", u64(20240501123456)),
    (T["TIMESTAMP"], b"", u32(1700000000)),
    (T["TIME2"], bytes([3]), bytes([0x80, 0x10, 0x00]) + bytes([0x01, 0x02])),
    (T["DATETIME2"], bytes([6]), bytes([0x99, 0xB3, 0x02, 0xC8, 0xB8]) + bytes([0x0C, 0x0B, 0x5A])),
    (T["TIMESTAMP2"], bytes([2]), be32(1700000000) + b"\x05"),
    (T["VARCHAR"], u16(40), b"\x05hello"), (T["VARCHAR"], u16(400), u16(3) + b"abc"),
    (T["STRING"], bytes([0xFE, 10]), b"\x03abc"), (T["STRING"], bytes([T["ENUM"], 1]), b"\x02"),
    (T["STRING"], bytes([T["SET"], 1]), b"\x05"), (T["BLOB"], b"\x02", u16(4) + b"\x00\x01\xfe\xff"),
    (T["JSON"], b"\x04", u32(len(doc)) + doc), (T["BIT"], bytes([3, 1]), b"\x01\x05"),
    (T["GEOMETRY"], b"\x04", u32(25) + b"\0\0\0\0\x01\x01\0\0\0" + struct.pack("<dd", 1.0, 2.0)),
]
opt_all = lambda names, n_numeric, n_char: [
    (1, bytes([0x55]) * ((n_numeric + 7) // 8)), (4, column_names(names)),
    (3, b"".join(lenenc(c) for c in [255, 63, 8][: max(n_char, 0)] * ((n_char + 2) // 3))[: 10 * n_char]),
]
for i, (code, meta, val) in enumerate(types):
    tm = table_map(100 + i, "app", "t", [(T["LONGLONG"], b""), (code, meta)],
                   [(1, b"\x80"), (4, column_names(["id", "v"])), (8, lenenc(0))]
                   + ([(6, lenenc(2) + lenenc(1) + b"a" + lenenc(1) + b"b")] if code == T["STRING"] and meta[0] == T["ENUM"] else [])
                   + ([(5, lenenc(3) + lenenc(1) + b"x" + lenenc(1) + b"y" + lenenc(1) + b"z")] if code == T["STRING"] and meta[0] == T["SET"] else []))
    img = b"\0" + u64(i) + val
    null_img = b"\2" + u64(i)
    for kind, update in ((0, False), (1, True), (5, False)):
        rows = [img + img] if update else [img, null_img]
        ev = rows_event(100 + i, kind >= 3, update, 2, rows)
        put("binlog_rows", u16(len(tm)) + tm + bytes([kind]) + ev)
# MINIMAL metadata (no names): the target generates them
tm = table_map(7, "app", "t", [(T["LONG"], b""), (T["VARCHAR"], u16(40))], [])
put("binlog_rows", u16(len(tm)) + tm + b"\3" + rows_event(7, True, False, 2, [b"\0" + u32(1) + b"\2hi"]))

def ev(type_code, body, flags=0):
    return bytes([type_code]) + u16(flags) + u16(len(body)) + body
doc_tm = table_map(42, "app", "doc", [(T["LONGLONG"], b""), (T["JSON"], b"\x04")],
                   [(1, b"\x80"), (4, column_names(["id", "body"])), (8, lenenc(0))])
doc_row = b"\0" + u64(1) + u32(len(doc)) + doc
w2 = ev(30, rows_event(42, True, False, 2, [doc_row]))
u2 = ev(31, rows_event(42, True, True, 2, [doc_row + doc_row]))
d1 = ev(25, rows_event(42, False, False, 2, [doc_row]))
tmev = ev(19, doc_tm)
rot = ev(4, u64(4) + b"binlog.000002")
fde = ev(15, b"\4\0" + b"8.0.36".ljust(50, b"\0") + u32(0) + bytes([19]) + bytes(40) + b"\1")
put("binlog_events", b"\0" + rot + fde + ev(33, mysql_gtid(SID, 42, 1_700_000_000_000_000)) + ev(2, query("app", "BEGIN"))
    + tmev + w2 + u2 + ev(16, u64(77)))
put("binlog_events", b"\2" + ev(33, mysql_gtid(SID, 42, 1)) + ev(2, query("app", "BEGIN")) + tmev + d1 + ev(2, query("app", "COMMIT")))
put("binlog_events", b"\1" + ev(163, gtid_list([(0, 1, 10), (5, 2, 3)])) + ev(162, maria_gtid(11, 0, 0)) + ev(2, query("app", "BEGIN"))
    + tmev + w2 + ev(16, u64(78), flags=0x8000))
put("binlog_events", b"\1" + ev(162, maria_gtid(12, 0, 1)) + ev(2, query("app", "ALTER TABLE doc ADD x INT")) + ev(27, b""))
put("binlog_events", b"\2" + ev(34, mysql_gtid(SID, 0, 5)) + ev(2, query("app", "BEGIN")) + tmev + w2 + ev(2, query("app", "ROLLBACK")))

# --- MySQL binary JSON --------------------------------------------------------------------------
put("mysql_json", doc)
for d in [b"\x04\x00", b"\x05\xff\xff", b"\x0a" + u64(2**64 - 1), b"\x0b" + struct.pack("<d", 1.5),
          bytes([0x0C, 5, ord("a"), ord('"'), ord("\n"), 0xC3, 0xA9]), bytes([0x0F, 246, 4, 4, 2, 0x80 | 12, 34]),
          b"\x0f\x0a\x08" + u64(0x19_B4_21 << 24 << 17), b"\x0f\x0c\x08" + u64(1 << 40), b"\x0f\x0b\x08" + u64(5 << 24),
          b"\x0f\xfc\x03abc", b"\x07" + u32(7), b"\x09" + u64(2**63)]:
    put("mysql_json", d)
big = bytearray([1, 0, 0, 0, 0, 0, 0, 0]) + u32(13) + u16(1) + bytes([0x0C]) + u32(19) + b"k" + b"\x02hi"
big[4:8] = u32(len(big))
put("mysql_json", b"\x01" + bytes(big))

# --- spill files --------------------------------------------------------------------------------
def f(name, t, v=None):
    return {"name": name, "value": {"t": t} if v is None else {"t": t, "v": v}}
fields = [f("id", "int", 1), f("u", "u_int", 2**64 - 1), f("f32", "float32", 0x7FC00000), f("f64", "float64", 0x400921FB54442D18),
          f("dec", "decimal", "-12.50"), f("nan", "decimal", "NaN"), f("s", "text", "é\n\"x\""), f("b", "bytes", [0, 255]),
          f("j", "json", '{"a": [1, 2.5e10]}'), f("id2", "uuid", list(range(16))), f("d", "date", -719162),
          f("tm", "time", -3020399000000), f("tz", "time_tz", {"micros": 1, "offset_secs": -3600}),
          f("ts", "timestamp", 9223372036854775807), f("tstz", "timestamp_tz", 0),
          f("iv", "interval", {"months": 1, "days": -2, "micros": 3}), f("e", "enum", "red"), f("set", "set", ["a", "b"]),
          f("bits", "bits", {"len": 3, "bytes": [160]}), f("arr", "array", [{"t": "int", "v": 1}, {"t": "null"}]),
          f("o", "other", {"type_name": "point", "text": "(1,2)"}), f("n", "null"), f("un", "unchanged"), f("bo", "bool", True)]
tref = {"schema": "public", "name": "t"}
lines = [
    {"table": tref, "op": "insert", "before": None, "after": {"kind": "full", "fields": fields}},
    {"table": tref, "op": "update", "before": {"kind": "key", "fields": fields[:1]}, "after": {"kind": "partial", "fields": fields[1:4]}},
    {"table": tref, "op": "delete", "before": {"kind": "full", "fields": fields[:2]}, "after": None},
    {"table": tref, "op": "truncate", "before": None, "after": None},
]
put("spill_read", "".join(json.dumps(l, ensure_ascii=False, separators=(",", ":")) + "\n" for l in lines).encode())
for l in lines:
    put("spill_read", (json.dumps(l, separators=(",", ":")) + "\n").encode())
