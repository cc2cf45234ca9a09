import { createServer, createConnection, type AddressInfo } from "node:net";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseEndpoint, startRelay } from "./relay.ts";

describe("relay", () => {
  it("parses tcp and unix endpoints and rejects anything else with a hint", () => {
    expect(parseEndpoint("tcp:127.0.0.1:6443")).toEqual({ host: "127.0.0.1", port: 6443 });
    expect(parseEndpoint("unix:/run/x.sock")).toEqual({ path: "/run/x.sock" });
    expect(() => parseEndpoint("127.0.0.1:80")).toThrow(/tcp:HOST:PORT or unix:PATH/);
    expect(() => parseEndpoint("tcp:127.0.0.1:99999")).toThrow();
  });

  it("carries bytes both ways from TCP through a unix socket to TCP", async () => {
    const echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, "127.0.0.1", r));
    const sock = join(mkdtempSync(join(tmpdir(), "klab-relay-")), "r.sock");
    const inner = await startRelay(
      { path: sock },
      { host: "127.0.0.1", port: (echo.address() as AddressInfo).port },
    );
    const outer = await startRelay({ host: "127.0.0.1", port: 0 }, { path: sock });
    const port = (outer.server.address() as AddressInfo).port;
    const reply = await new Promise<string>((resolve, reject) => {
      const c = createConnection(port, "127.0.0.1");
      let got = "";
      c.on("data", (d) => {
        got += d.toString();
        if (got.length >= 5) {
          c.end();
          resolve(got);
        }
      });
      c.on("error", reject);
      c.write("hello");
    });
    expect(reply).toBe("hello");
    await outer.close();
    await inner.close();
    echo.close();
  });

  it("closes the client when the target refuses, and keeps serving", async () => {
    const outer = await startRelay({ host: "127.0.0.1", port: 0 }, { host: "127.0.0.1", port: 1 });
    const port = (outer.server.address() as AddressInfo).port;
    for (let i = 0; i < 2; i++) {
      await new Promise<void>((resolve) => {
        const c = createConnection(port, "127.0.0.1");
        c.on("close", () => resolve());
        c.on("error", () => undefined);
      });
    }
    await outer.close();
  });
});
