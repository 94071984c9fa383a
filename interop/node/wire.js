"use strict";
// The JSON convention shared with the Go side and the wire-vector file:
// {"$bin": "<hex>"} stands for a Buffer / Uint8Array, {"$date": "<ISO>"} for
// a Date. toJSONValue maps a JS value to plain JSON data with that
// convention; fromJSONValue maps it back (Buffers and Dates).

function isPlainTagged(v, key) {
  return (
    v !== null &&
    typeof v === "object" &&
    !Array.isArray(v) &&
    Object.keys(v).length === 1 &&
    typeof v[key] === "string"
  );
}

// toJSONValue follows what @msgpack/msgpack 2.8 does with the same value, so
// that a local value and the same value fetched from another server compare
// equal: undefined -> null (in arrays and objects), Set/Map -> {} (their own
// enumerable properties), functions dropped from objects.
function toJSONValue(v) {
  if (v === undefined || v === null) {
    return null;
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  }
  if (v instanceof ArrayBuffer) {
    return { $bin: Buffer.from(v).toString("hex") };
  }
  if (ArrayBuffer.isView(v)) {
    return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("hex") };
  }
  if (v instanceof Date) {
    return { $date: v.toISOString() };
  }
  if (Array.isArray(v)) {
    return v.map((x) => (typeof x === "function" ? null : toJSONValue(x)));
  }
  if (typeof v === "object") {
    const out = {};
    for (const k of Object.keys(v)) {
      if (typeof v[k] === "function") {
        continue;
      }
      out[k] = toJSONValue(v[k]);
    }
    return out;
  }
  if (typeof v === "bigint") {
    return Number(v);
  }
  if (typeof v === "number" && !Number.isFinite(v)) {
    return null;
  }
  return v;
}

function fromJSONValue(v) {
  if (v === null || typeof v !== "object") {
    return v;
  }
  if (Array.isArray(v)) {
    return v.map(fromJSONValue);
  }
  if (isPlainTagged(v, "$bin")) {
    return Buffer.from(v.$bin, "hex");
  }
  if (isPlainTagged(v, "$date")) {
    return new Date(v.$date);
  }
  const out = {};
  for (const k of Object.keys(v)) {
    out[k] = fromJSONValue(v[k]);
  }
  return out;
}

module.exports = { toJSONValue, fromJSONValue };
