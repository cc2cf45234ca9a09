import { describe, expect, it } from "vitest";
import {
  controlFrame,
  dataFrame,
  decodeHeaderBlock,
  encodeHeaderBlock,
  FrameReader,
  HeaderCodec,
  SPDY3_DICTIONARY,
  SYN_STREAM,
  u32,
} from "./spdy.ts";

describe("SPDY/3.1 framing", () => {
  it("builds the spec dictionary (1423 bytes, adler32 e3c6a7c2)", () => {
    let a = 1;
    let b = 0;
    for (const x of SPDY3_DICTIONARY) {
      a = (a + x) % 65521;
      b = (b + a) % 65521;
    }
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect((((b << 16) | a) >>> 0).toString(16)).toBe("e3c6a7c2");
  });
  it("reads frames split across chunks", () => {
    const bytes = Buffer.concat([
      controlFrame(SYN_STREAM, 0, u32(1, 0)),
      dataFrame(1, 1, Buffer.from("hello")),
    ]);
    const r = new FrameReader();
    const frames = [
      ...r.push(bytes.subarray(0, 5)),
      ...r.push(bytes.subarray(5, 19)),
      ...r.push(bytes.subarray(19)),
    ];
    expect(frames).toHaveLength(2);
    expect(frames[0]).toMatchObject({ control: true, type: SYN_STREAM });
    expect(frames[1]).toMatchObject({ control: false, streamId: 1, flags: 1, data: Buffer.from("hello") });
  });
  it("rejects frames of another version or absurd size", () => {
    const v2 = controlFrame(SYN_STREAM, 0, u32(1, 0));
    v2.writeUInt16BE(0x8002, 0);
    expect(() => new FrameReader().push(v2)).toThrow(/version 2/);
    expect(() => new FrameReader(100).push(dataFrame(1, 0, Buffer.alloc(200)))).toThrow(/too large/);
  });
  it("round-trips header blocks through one shared zlib context per direction", async () => {
    const a = new HeaderCodec();
    const b = new HeaderCodec();
    for (const h of [
      { streamtype: "error", port: "80", requestid: "0" },
      { streamtype: "data", port: "80", requestid: "0" },
    ]) {
      expect(await b.decode(await a.encode(h))).toEqual(h);
    }
    a.close();
    b.close();
    expect(decodeHeaderBlock(encodeHeaderBlock({ A: "1" }))).toEqual({ a: "1" });
    expect(() => decodeHeaderBlock(Buffer.from([0, 0, 0, 5]))).toThrow(/truncated/);
  });
});
