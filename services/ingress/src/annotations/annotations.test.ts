import { describe, expect, it } from "vitest";
import { parseAnnotations } from "./index.ts";
import { admit, type BucketState } from "./limit-rps.ts";
import { pickEndpoint, setCookieHeader } from "./affinity.ts";
import { parseSize } from "./proxy-body-size.ts";
import { rewrite } from "./rewrite-target.ts";

const P = "nginx.ingress.kubernetes.io/";

describe("annotation parsing", () => {
  it("uses ingress-nginx's defaults", () => {
    const { value, errors } = parseAnnotations({});
    expect(errors).toEqual([]);
    expect(value).toMatchObject({
      redirect: { sslRedirect: true, forceSslRedirect: false },
      useRegex: false,
      backendProtocol: "HTTP",
      serviceUpstream: false,
      timeouts: { connectSeconds: 5, readSeconds: 60, sendSeconds: 60 },
      proxyBodySize: 1024 * 1024,
    });
  });
  it("reports a bad value and keeps the default", () => {
    const { value, errors } = parseAnnotations({
      [P + "ssl-redirect"]: "yes",
      [P + "backend-protocol"]: "SMTP",
      [P + "proxy-read-timeout"]: "soon",
    });
    expect(value.redirect.sslRedirect).toBe(true);
    expect(value.backendProtocol).toBe("HTTP");
    expect(value.timeouts.readSeconds).toBe(60);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/nginx.ingress.kubernetes.io\/ssl-redirect/);
  });
  it("parses timeouts, protocols, sizes", () => {
    const { value } = parseAnnotations({
      [P + "proxy-connect-timeout"]: "2",
      [P + "proxy-read-timeout"]: "3600",
      [P + "backend-protocol"]: "grpc",
      [P + "proxy-body-size"]: "8k",
    });
    expect(value.timeouts).toEqual({ connectSeconds: 2, readSeconds: 3600, sendSeconds: 60 });
    expect(value.backendProtocol).toBe("GRPC");
    expect(value.proxyBodySize).toBe(8192);
    expect(parseSize("2M")).toBe(2 * 1024 * 1024);
    expect(parseSize("1.5m")).toBeUndefined();
  });
});

describe("limit-rps leaky bucket (nginx limit_req, burst 5×, nodelay)", () => {
  it("passes 6 immediate requests at limit-rps 1 and refuses the 7th", () => {
    const limit = { rps: 1, burst: 5 };
    let state: BucketState | undefined;
    const results: boolean[] = [];
    for (let i = 0; i < 7; i++) {
      const r = admit(state, 1000, limit);
      state = r.state;
      results.push(r.ok);
    }
    expect(results).toEqual([true, true, true, true, true, true, false]);
    expect(admit(state, 2000, limit).ok).toBe(true);
  });
});

describe("cookie affinity", () => {
  it("the same key keeps its endpoint while it exists", () => {
    const eps = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"].map((address) => ({ address }));
    const first = pickEndpoint("abc", eps)!;
    expect(pickEndpoint("abc", [...eps].reverse())).toEqual(first);
    expect(pickEndpoint("abc", [...eps, { address: "10.0.0.4:80" }])?.address).toMatch(
      new RegExp(`${first.address}|10.0.0.4:80`),
    );
  });
  it("writes the cookie as ingress-nginx does: session cookie, path, HttpOnly, Secure on https", () => {
    const cfg = { cookieName: "INGRESSCOOKIE", mode: "balanced" as const };
    expect(setCookieHeader(cfg, "k|b", { path: "/app", secure: false, nowMs: 0 })).toBe(
      "INGRESSCOOKIE=k|b; Path=/app; HttpOnly",
    );
    expect(
      setCookieHeader({ ...cfg, maxAgeSeconds: 172800, sameSite: "Lax" }, "v", {
        path: "/",
        secure: true,
        nowMs: 0,
      }),
    ).toBe("INGRESSCOOKIE=v; Max-Age=172800; Path=/; Secure; HttpOnly; SameSite=Lax");
  });
});

describe("rewrite-target", () => {
  it("replaces the whole URI with the target, captures substituted", () => {
    expect(rewrite("/api(/|$)(.*)", "/v2/$2", "/API/users")).toBe("/v2/users");
    expect(rewrite("/(?<rest>.*)", "/x/${rest}", "/a/b")).toBe("/x/a/b");
  });
});
