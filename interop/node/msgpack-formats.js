"use strict";
// Lists the msgpack formats used by an encoded value, with the names of the
// wire-vector file's `msgpackFormats` field ("fixstr", "uint64",
// "fixext8(type -1)", ...), so that the fidelity test can check that the same
// data is encoded with the same formats (float64 vs float32, uint64 for
// large integers, the timestamp extension for Dates, ...).

const FIXED = {
  0xc0: "nil",
  0xc2: "bool",
  0xc3: "bool",
  0xca: "float32",
  0xcb: "float64",
  0xcc: "uint8",
  0xcd: "uint16",
  0xce: "uint32",
  0xcf: "uint64",
  0xd0: "int8",
  0xd1: "int16",
  0xd2: "int32",
  0xd3: "int64",
};
const FIXED_SIZE = {
  0xca: 4, 0xcb: 8, 0xcc: 1, 0xcd: 2, 0xce: 4, 0xcf: 8,
  0xd0: 1, 0xd1: 2, 0xd2: 4, 0xd3: 8,
};
const FIXEXT = { 0xd4: ["fixext1", 1], 0xd5: ["fixext2", 2], 0xd6: ["fixext4", 4], 0xd7: ["fixext8", 8], 0xd8: ["fixext16", 16] };
const SIZED = {
  // byte: [name, length bytes, kind]
  0xc4: ["bin8", 1, "raw"], 0xc5: ["bin16", 2, "raw"], 0xc6: ["bin32", 4, "raw"],
  0xd9: ["str8", 1, "raw"], 0xda: ["str16", 2, "raw"], 0xdb: ["str32", 4, "raw"],
  0xc7: ["ext8", 1, "ext"], 0xc8: ["ext16", 2, "ext"], 0xc9: ["ext32", 4, "ext"],
  0xdc: ["array16", 2, "array"], 0xdd: ["array32", 4, "array"],
  0xde: ["map16", 2, "map"], 0xdf: ["map32", 4, "map"],
};

function readLen(buf, pos, n) {
  if (n === 1) return buf.readUInt8(pos);
  if (n === 2) return buf.readUInt16BE(pos);
  return buf.readUInt32BE(pos);
}

function msgpackFormats(bytes) {
  const buf = Buffer.from(bytes);
  const seen = new Set();
  function walk(pos) {
    const b = buf[pos];
    if (b === undefined) throw new Error(`msgpack: truncated at ${pos}`);
    if (b <= 0x7f) return seen.add("positive fixint"), pos + 1;
    if (b >= 0xe0) return seen.add("negative fixint"), pos + 1;
    if (b <= 0x8f) return seen.add("fixmap"), items(pos + 1, 2 * (b & 0x0f));
    if (b <= 0x9f) return seen.add("fixarray"), items(pos + 1, b & 0x0f);
    if (b <= 0xbf) return seen.add("fixstr"), pos + 1 + (b & 0x1f);
    if (b in FIXED) return seen.add(FIXED[b]), pos + 1 + (FIXED_SIZE[b] || 0);
    if (b in FIXEXT) {
      const [name, size] = FIXEXT[b];
      seen.add(`${name}(type ${buf.readInt8(pos + 1)})`);
      return pos + 2 + size;
    }
    if (b in SIZED) {
      const [name, n, kind] = SIZED[b];
      const len = readLen(buf, pos + 1, n);
      const start = pos + 1 + n;
      if (kind === "raw") return seen.add(name), start + len;
      if (kind === "ext") return seen.add(`${name}(type ${buf.readInt8(start)})`), start + 1 + len;
      seen.add(name);
      return items(start, kind === "map" ? 2 * len : len);
    }
    throw new Error(`msgpack: unknown format byte 0x${b.toString(16)} at ${pos}`);
  }
  function items(pos, count) {
    for (let i = 0; i < count; i++) pos = walk(pos);
    return pos;
  }
  const end = walk(0);
  if (end !== buf.length) throw new Error(`msgpack: ${buf.length - end} trailing bytes`);
  return [...seen].sort();
}

module.exports = { msgpackFormats };
