"use strict";
// Offline checks of the wire-vector file and of the helpers the fidelity
// test relies on: every vector's data decodes (@msgpack/msgpack, as
// upstream) to its `decoded` field under wire.js's $bin/$date convention,
// re-encodes to the same bytes, and msgpack-formats.js names the same
// formats as the file.

const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const fs = require("node:fs");
const { encode, decode } = require("@msgpack/msgpack");
const { toJSONValue, fromJSONValue } = require("../wire");
const { msgpackFormats } = require("../msgpack-formats");

const VECTORS = path.join(__dirname, "..", "..", "..", "testdata", "aws-sqs-adapter-0.1.1.json");

function loadVectors() {
  return JSON.parse(fs.readFileSync(VECTORS, "utf8"));
}

test("wire vectors decode, re-encode and list formats as recorded", () => {
  const vectors = loadVectors();
  assert.equal(vectors.length, 71);
  const types = new Set(vectors.map((v) => v.type));
  assert.deepEqual([...types].sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
  for (const [i, v] of vectors.entries()) {
    const where = `vector ${i} (${v.scenario}, type ${v.type})`;
    assert.equal(v.body, String(v.type), where);
    if (v.dataHex === null) {
      assert.equal(v.attributes.data, undefined, where);
      continue;
    }
    const bytes = Buffer.from(v.dataHex, "hex");
    const decoded = decode(bytes);
    assert.deepEqual(toJSONValue(decoded), v.decoded, where);
    assert.deepEqual(msgpackFormats(bytes), [...v.msgpackFormats].sort(), where);
    // The $bin/$date convention loses nothing that matters on the wire:
    // what it gives back encodes to the recorded bytes (Set/Map excepted,
    // which upstream already sent as empty maps).
    assert.equal(Buffer.from(encode(fromJSONValue(v.decoded))).toString("hex"), v.dataHex, where);
  }
});

test("fromJSONValue and toJSONValue are inverse on tagged values", () => {
  const value = { b: Buffer.from([1, 2]), d: new Date("2023-11-14T22:13:20.123Z"), l: [null, 1.5, "x"] };
  const json = toJSONValue(value);
  assert.deepEqual(json, { b: { $bin: "0102" }, d: { $date: "2023-11-14T22:13:20.123Z" }, l: [null, 1.5, "x"] });
  assert.deepEqual(fromJSONValue(json), value);
  assert.deepEqual(toJSONValue({ u: undefined, s: new Set([1]), m: new Map([["a", 1]]), f() {} }), { u: null, s: {}, m: {} });
});
