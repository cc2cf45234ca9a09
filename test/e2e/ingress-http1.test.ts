/**
 * The ingress's own HTTP/1.x server side, on raw sockets: what curl never sends (pipelining,
 * chunked request bodies, HTTP/1.0, oversized lines, unknown versions) answered as nginx answers,
 * the bad ones in the access log, and retries walking the endpoints round robin.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import net from "node:net";
import { describeWith } from "../support/prereq.ts";
import { until } from "../support/wait.ts";
import {
  startController,
  startUpstream,
  type Controller,
  type Upstream,
} from "../../services/ingress/src/harness.ts";
import { endpointSlice, ingress, service } from "../../services/ingress/src/fixtures.ts";
import { ACCESS_LOG_PATTERN } from "../../services/ingress/src/http/access-log.ts";

/** Write `data` (pieces written apart), read until the server closes or `until` matches. */
function exchange(
  port: number,
  data: Array<string | Buffer>,
  done: (received: string) => boolean = () => false,
): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    let out = "";
    const finish = (): void => {
      s.destroy();
      resolve(out);
    };
    s.on("connect", async () => {
      for (const piece of data) {
        s.write(piece);
        await new Promise((r) => setTimeout(r, 30));
      }
    });
    s.on("data", (c) => {
      out += c.toString("latin1");
      if (done(out)) finish();
    });
    s.on("close", finish);
    s.on("error", finish);
    s.setTimeout(8000, finish);
  });
}

const responses = (s: string): number => (s.match(/HTTP\/1\.1 \d{3} [A-Z]/g) ?? []).length;

describeWith({}, "ingress HTTP/1.x server side on raw sockets", () => {
  let ctl: Controller;
  let echo: Upstream;
  let stream: Upstream;
  let refusing: number;

  beforeAll(async () => {
    echo = await startUpstream("echo");
    // Answers without Content-Length: the ingress must frame it for its client.
    stream = await startUpstream("stream", {
      handler: (_req, res) => {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("one\n");
        setTimeout(() => res.end("two\n"), 20);
      },
    });
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.2", () => r()));
    refusing = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    ctl = await startController({
      services: [service("echo"), service("stream"), service("down")],
      slices: [
        endpointSlice("echo", [{ ip: echo.ip }], { port: echo.port }),
        endpointSlice("stream", [{ ip: stream.ip }], { port: stream.port }),
        // Two endpoints where nothing listens.
        endpointSlice("down", [{ ip: "127.0.0.2" }, { ip: "127.0.0.3" }], { port: refusing }),
      ],
      ingresses: [
        ingress("h1", {
          rules: [
            { host: "echo.test", paths: [{ path: "/", service: "echo" }] },
            { host: "stream.test", paths: [{ path: "/", service: "stream" }] },
            { host: "down.test", paths: [{ path: "/", service: "down" }] },
          ],
        }),
      ],
    });
  });
  afterAll(async () => {
    await ctl?.close();
    await echo?.close();
    await stream?.close();
  });

  it("answers pipelined requests in order on one connection, with nginx's Server and a Date", async () => {
    const out = await exchange(ctl.http, [
      "GET /one HTTP/1.1\r\nHost: echo.test\r\n\r\nGET /two HTTP/1.1\r\nHost: echo.test\r\n\r\n" +
        "GET /three HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n",
    ]);
    expect(responses(out)).toBe(3);
    const urls = [...out.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]);
    expect(urls).toEqual(["/one", "/two", "/three"]);
    expect(out).toMatch(/\r\nServer: nginx\r\n/);
    expect(out).toMatch(/\r\nDate: \w{3}, \d{2} \w{3} \d{4} /);
    expect(out).toMatch(/Connection: close\r\n/);
  });

  it("reads a chunked request body in pieces and sends it upstream with a Content-Length", async () => {
    const out = await exchange(
      ctl.http,
      [
        "POST /upload HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "lo\r\n6;x=y\r\n world\r\n",
        "0\r\n\r\n",
      ],
      (r) => r.includes("}"),
    );
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(out).toContain('"body":"hello world"');
    expect(echo.seen.at(-1)!.headers["content-length"]).toBe("11");
    expect(echo.seen.at(-1)!.headers["transfer-encoding"]).toBeUndefined();
  });

  it("sends 100 Continue before reading a body the client holds back", async () => {
    const out = await new Promise<string>((resolve) => {
      const s = net.connect(ctl.http, "127.0.0.1", () =>
        s.write("PUT /x HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"),
      );
      let got = "";
      s.on("data", (c) => {
        got += c.toString();
        if (got === "HTTP/1.1 100 Continue\r\n\r\n") s.write("data");
        if (got.includes("}")) {
          s.destroy();
          resolve(got);
        }
      });
      s.setTimeout(8000, () => (s.destroy(), resolve(got)));
    });
    expect(out).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    expect(out).toContain('"body":"data"');
  });

  it("frames a response without Content-Length: chunked for HTTP/1.1, closed for HTTP/1.0", async () => {
    const h11 = await exchange(ctl.http, ["GET / HTTP/1.1\r\nHost: stream.test\r\n\r\n"], (r) =>
      r.endsWith("0\r\n\r\n"),
    );
    expect(h11).toMatch(/Transfer-Encoding: chunked\r\n/);
    expect(h11).toMatch(/\r\n\r\n4\r\none\n\r\n4\r\ntwo\n\r\n0\r\n\r\n$/);
    const h10 = await exchange(ctl.http, ["GET / HTTP/1.0\r\nHost: stream.test\r\n\r\n"]);
    expect(h10).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(h10).not.toMatch(/Transfer-Encoding/);
    expect(h10).toMatch(/Connection: close\r\n\r\none\ntwo\n$/);
  });

  it("keeps an HTTP/1.0 connection open only when asked", async () => {
    const out = await exchange(ctl.http, [
      "GET /a HTTP/1.0\r\nHost: echo.test\r\nConnection: keep-alive\r\n\r\n",
      "GET /b HTTP/1.0\r\nHost: echo.test\r\n\r\n",
    ]);
    expect(responses(out), out).toBe(2);
    expect(out).toMatch(/Connection: keep-alive[\s\S]*Connection: close/);
  });

  it("answers 414, 400 Request Header Or Cookie Too Large, 505, and a broken chunk with 400, each logged", async () => {
    const before = ctl.accessLog.length;
    const longUri = await exchange(ctl.http, [
      `GET /${"u".repeat(9000)} HTTP/1.1\r\nHost: echo.test\r\n\r\n`,
    ]);
    expect(longUri).toMatch(/^HTTP\/1\.1 414 Request-URI Too Large\r\n[\s\S]*Connection: close/);
    const longLine = await exchange(ctl.http, [
      `GET / HTTP/1.1\r\nHost: echo.test\r\nX-Big: ${"h".repeat(9000)}\r\n\r\n`,
    ]);
    expect(longLine).toMatch(
      /^HTTP\/1\.1 400 Bad Request[\s\S]*<title>400 Request Header Or Cookie Too Large<\/title>/,
    );
    const version = await exchange(ctl.http, ["GET / HTTP/9.9\r\nHost: echo.test\r\n\r\n"]);
    expect(version).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported/);
    const chunk = await exchange(ctl.http, [
      "POST / HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n",
    ]);
    expect(chunk).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    const garbage = await exchange(ctl.http, ['\x16\x03\x01"\\junk\r\n\r\n']);
    expect(garbage).toMatch(/^HTTP\/1\.1 400 Bad Request/);

    await until(
      "access log lines",
      5000,
      async () => (ctl.accessLog.length >= before + 5 ? true : undefined),
      50,
    );
    const lines = ctl.accessLog.slice(before);
    for (const line of lines) expect(line, line).toMatch(ACCESS_LOG_PATTERN);
    const statuses = lines.map((l) => ACCESS_LOG_PATTERN.exec(l)![5]);
    expect(statuses).toEqual(expect.arrayContaining(["414", "400", "505"]));
    // nginx escapes what is not printable ASCII, quotes and backslashes.
    expect(lines.join("\n")).toContain('"\\x16\\x03\\x01\\x22\\x5Cjunk" 400');
    expect(lines.join("\n")).toContain('"GET / HTTP/9.9" 505');
  });

  it("sends nothing upstream without the whole body: broken chunks get 400, a client that leaves 499", async () => {
    const before = ctl.accessLog.length;
    const broken = await exchange(ctl.http, [
      "POST /broken-later HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
      "zz\r\n",
    ]);
    expect(broken).toMatch(/^HTTP\/1\.1 400 Bad Request[\s\S]*Connection: close/);

    await new Promise<void>((resolve) => {
      const s = net.connect(ctl.http, "127.0.0.1", () => {
        s.write("POST /left-early HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 100\r\n\r\nten bytes.");
        setTimeout(() => (s.destroy(), resolve()), 100);
      });
    });
    await until(
      "two access log lines",
      5000,
      async () => (ctl.accessLog.length >= before + 2 ? true : undefined),
      50,
    );
    const lines = ctl.accessLog.slice(before).map((l) => ACCESS_LOG_PATTERN.exec(l)!);
    expect(lines.map((m) => `${m[4]} ${m[5]}`)).toEqual([
      "POST /broken-later HTTP/1.1 400",
      "POST /left-early HTTP/1.1 499",
    ]);
    expect(echo.seen.map((r) => r.url)).not.toContain("/broken-later");
    expect(echo.seen.map((r) => r.url)).not.toContain("/left-early");
  });

  it("retries a refusing upstream on the next endpoint in round robin: A, B, A", async () => {
    const before = ctl.accessLog.length;
    const out = await exchange(ctl.http, ["GET / HTTP/1.1\r\nHost: down.test\r\nConnection: close\r\n\r\n"]);
    expect(out).toMatch(/^HTTP\/1\.1 502 Bad Gateway/);
    await until(
      "an access log line",
      5000,
      async () => (ctl.accessLog.length > before ? true : undefined),
      50,
    );
    const m = ACCESS_LOG_PATTERN.exec(ctl.accessLog.at(-1)!)!;
    const tried = m[13].split(", ");
    expect(tried).toHaveLength(3);
    expect(tried[0]).not.toBe(tried[1]);
    expect(tried[2]).toBe(tried[0]);
    expect(m[16]).toBe("502, 502, 502");
  });

  it("keeps serving after all that", async () => {
    const out = await exchange(ctl.http, [
      "GET /ok HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n",
    ]);
    expect(out).toMatch(/^HTTP\/1\.1 200 OK/);
  });
});
