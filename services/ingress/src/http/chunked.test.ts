import { describe, expect, it } from "vitest";
import { ChunkedDecoder } from "./chunked.ts";

function decodeInPieces(wire: string, size: number) {
  const d = new ChunkedDecoder();
  const buf = Buffer.from(wire);
  const body: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) {
    const step = d.push(buf.subarray(i, i + size));
    body.push(...step.data);
    if (step.error) return { error: step.error };
    if (step.done) return { body: Buffer.concat(body).toString(), rest: step.rest?.toString() ?? "" };
  }
  return { incomplete: true, body: Buffer.concat(body).toString() };
}

describe("ChunkedDecoder", () => {
  const wire = "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\nGET /next";
  it("decodes sizes, extensions, data and trailers whatever the piece size", () => {
    for (const size of [1, 2, 3, 7, 1000])
      expect(decodeInPieces(wire, size), `pieces of ${size}`).toEqual({
        body: "hello, world",
        rest: size >= wire.length ? "GET /next" : expect.any(String),
      });
    expect(decodeInPieces(wire, 1000).rest).toBe("GET /next");
  });

  it("accepts bare LF and uppercase hex", () => {
    expect(decodeInPieces("A\nabcdefghij\n0\n\n", 4)).toEqual({ body: "abcdefghij", rest: "" });
  });

  it("refuses broken framing", () => {
    expect(decodeInPieces("zz\r\n", 10)).toHaveProperty("error");
    expect(decodeInPieces("3\r\nabcX\r\n", 10)).toHaveProperty("error");
    expect(decodeInPieces("-1\r\n", 10)).toHaveProperty("error");
    expect(decodeInPieces("1".repeat(5000), 100)).toHaveProperty("error");
  });

  it("waits for more", () => {
    expect(decodeInPieces("5\r\nhel", 100)).toEqual({ incomplete: true, body: "hel" });
  });
});
