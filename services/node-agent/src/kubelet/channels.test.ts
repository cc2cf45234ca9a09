import { describe, expect, it } from "vitest";
import { EXEC_PROTOCOLS, frame, negotiate, parseIncoming } from "./channels.ts";

describe("channel.k8s.io framing", () => {
  it("prefixes the channel byte", () => {
    expect([...frame(1, "hi")]).toEqual([1, 104, 105]);
  });
  it("reads stdin, resize and the v5 close", () => {
    expect(parseIncoming(Buffer.from("\x00ls\n", "latin1"), "v5.channel.k8s.io")).toEqual({
      kind: "stdin",
      data: Buffer.from("ls\n"),
    });
    expect(parseIncoming(Buffer.from('\x04{"Width":80,"Height":24}', "latin1"), "v5.channel.k8s.io")).toEqual(
      { kind: "resize", width: 80, height: 24 },
    );
    expect(parseIncoming(Buffer.from([255, 0]), "v5.channel.k8s.io")).toEqual({ kind: "close", channel: 0 });
    expect(parseIncoming(Buffer.from([255, 0]), "v4.channel.k8s.io").kind).toBe("invalid");
  });
  it("rejects garbage without throwing", () => {
    expect(parseIncoming(Buffer.alloc(0), "v5.channel.k8s.io").kind).toBe("invalid");
    expect(parseIncoming(Buffer.from("\x04{nope", "latin1"), "v5.channel.k8s.io").kind).toBe("invalid");
    expect(
      parseIncoming(Buffer.from('\x04{"Width":-1,"Height":2}', "latin1"), "v5.channel.k8s.io").kind,
    ).toBe("invalid");
    expect(parseIncoming(Buffer.from([9, 1]), "v5.channel.k8s.io").kind).toBe("invalid");
  });
  it("negotiates the first supported protocol the client offers", () => {
    expect(negotiate("v5.channel.k8s.io", EXEC_PROTOCOLS)).toBe("v5.channel.k8s.io");
    expect(negotiate("base64.channel.k8s.io, v4.channel.k8s.io", EXEC_PROTOCOLS)).toBe("v4.channel.k8s.io");
    expect(negotiate("SPDY/3.1", EXEC_PROTOCOLS)).toBeUndefined();
  });
});
