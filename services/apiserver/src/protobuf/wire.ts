// Protocol buffers wire format: a reader of tagged fields, enough to decode what Go clients send.
export class WireError extends Error {}

export interface WireField {
  num: number;
  wireType: number;
  /** varint fields: the value; 64/32-bit fields: the raw little-endian bytes. */
  varint?: bigint;
  bytes?: Uint8Array;
}

export function readVarint(buf: Uint8Array, pos: { i: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (let n = 0; n < 10; n++) {
    if (pos.i >= buf.length) throw new WireError("truncated varint");
    const b = buf[pos.i++]!;
    result |= BigInt(b & 0x7f) << shift;
    if ((b & 0x80) === 0) return result;
    shift += 7n;
  }
  throw new WireError("varint longer than 10 bytes");
}

export function* fields(buf: Uint8Array): Generator<WireField> {
  const pos = { i: 0 };
  while (pos.i < buf.length) {
    const key = Number(readVarint(buf, pos));
    const num = key >>> 3;
    const wireType = key & 7;
    if (num === 0) throw new WireError("field number 0");
    switch (wireType) {
      case 0:
        yield { num, wireType, varint: readVarint(buf, pos) };
        break;
      case 1:
      case 5: {
        const n = wireType === 1 ? 8 : 4;
        if (pos.i + n > buf.length) throw new WireError("truncated fixed field");
        yield { num, wireType, bytes: buf.subarray(pos.i, pos.i + n) };
        pos.i += n;
        break;
      }
      case 2: {
        const len = Number(readVarint(buf, pos));
        if (len < 0 || pos.i + len > buf.length)
          throw new WireError("length-delimited field runs past the end");
        yield { num, wireType, bytes: buf.subarray(pos.i, pos.i + len) };
        pos.i += len;
        break;
      }
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }
}
