import { describe, expect, it } from "vitest";
import { MAX_LINE, parseRequestHead } from "./request-head.ts";

const parse = (s: string) => parseRequestHead(Buffer.from(s, "latin1"));

describe("parseRequestHead, as nginx reads a request head", () => {
  it("reads the request line and joins repeated headers as Node does", () => {
    const v = parse(
      "GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nAccept: a\r\naccept: b\r\nCookie: c=1\r\nCookie: d=2\r\nUser-Agent: one\r\nUser-Agent: two\r\n\r\nNEXT",
    );
    expect(v.kind).toBe("head");
    if (v.kind !== "head") return;
    expect(v).toMatchObject({ method: "GET", target: "/a?b=1", minor: 1 });
    expect(v.headers).toEqual({ host: "x.test", accept: "a, b", cookie: "c=1; d=2", "user-agent": "one" });
    expect(v.rawHeaders.slice(0, 4)).toEqual(["Host", "x.test", "Accept", "a"]);
    expect(v.length).toBe(
      Buffer.byteLength(
        "GET /a?b=1 HTTP/1.1\r\nHost: x.test\r\nAccept: a\r\naccept: b\r\nCookie: c=1\r\nCookie: d=2\r\nUser-Agent: one\r\nUser-Agent: two\r\n\r\n",
      ),
    );
  });

  it("accepts bare LF line ends and HTTP/1.0 without Host", () => {
    const v = parse("HEAD / HTTP/1.0\nX-A: 1\n\n");
    expect(v).toMatchObject({ kind: "head", method: "HEAD", minor: 0, headers: { "x-a": "1" } });
  });

  it("waits for the rest of a head", () => {
    expect(parse("GET / HTTP/1.1\r\nHost: a\r\n").kind).toBe("incomplete");
    expect(parse("GET / HT").kind).toBe("incomplete");
    expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\r").kind).toBe("incomplete");
  });

  it("ignores header lines with invalid names, underscores included (underscores_in_headers off)", () => {
    const v = parse("GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nBad Name: 1\r\nOk: 2\r\n\r\n");
    expect(v).toMatchObject({ kind: "head", headers: { host: "a", ok: "2" } });
  });

  it("answers 414 for a request line over 8k, even before it ends", () => {
    const long = "GET /" + "a".repeat(MAX_LINE) + " HTTP/1.1\r\nHost: a\r\n\r\n";
    expect(parse(long)).toMatchObject({ kind: "invalid", status: 414 });
    expect(parse(long.slice(0, MAX_LINE + 100))).toMatchObject({ kind: "invalid", status: 414 });
  });

  it("answers nginx's 494-as-400 for a header line over 8k or a head over 32k", () => {
    const line = parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + "b".repeat(MAX_LINE) + "\r\n\r\n");
    expect(line).toMatchObject({
      kind: "invalid",
      status: 400,
      title: "400 Request Header Or Cookie Too Large",
    });
    const many = "GET / HTTP/1.1\r\nHost: a\r\n" + `X: ${"c".repeat(4000)}\r\n`.repeat(9) + "\r\n";
    expect(parse(many)).toMatchObject({
      kind: "invalid",
      status: 400,
      title: "400 Request Header Or Cookie Too Large",
    });
    // Still arriving, already too long.
    expect(parse("GET / HTTP/1.1\r\nHost: a\r\nX: " + "b".repeat(MAX_LINE + 10))).toMatchObject({
      status: 400,
    });
  });

  it("answers 505 for HTTP/2 and later on this port, 400 for other broken request lines", () => {
    expect(parse("GET / HTTP/9.9\r\nHost: a\r\n\r\n")).toMatchObject({ kind: "invalid", status: 505 });
    expect(parse("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).toMatchObject({ kind: "invalid", status: 400 });
    for (const bad of [
      "GARBAGE\r\n\r\n",
      "get / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/0.9\r\n\r\n",
      "GET  HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
      "GET / HTTP/1.1\r\nX: 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    ])
      expect(parse(bad), JSON.stringify(bad)).toMatchObject({ kind: "invalid", status: 400 });
  });

  it("keeps the request line for the access log", () => {
    expect(parse("\x16\x03\x01 junk\r\n\r\n")).toMatchObject({
      kind: "invalid",
      requestLine: "\x16\x03\x01 junk",
    });
  });
});

describe("parseRequestHead on random and mutated input", () => {
  it("never throws, and every verdict is one of the three kinds", () => {
    const valid = Buffer.from(
      "POST /a/b?c=d HTTP/1.1\r\nHost: x.test\r\nContent-Length: 3\r\nCookie: a=b\r\n\r\nabc",
    );
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let buf: Buffer;
      if (i % 2 === 0) {
        buf = Buffer.from(valid);
        for (let j = 0, n = 1 + rand(6); j < n; j++) buf[rand(buf.length)] = rand(256);
        buf = buf.subarray(0, 1 + rand(buf.length));
      } else {
        buf = Buffer.alloc(rand(300));
        for (let j = 0; j < buf.length; j++) buf[j] = rand(4) === 0 ? [10, 13, 32, 58][rand(4)] : rand(256);
      }
      const v = parseRequestHead(buf);
      expect(["head", "invalid", "incomplete"]).toContain(v.kind);
      if (v.kind === "head") expect(v.length).toBeLessThanOrEqual(buf.length);
    }
  });
});
