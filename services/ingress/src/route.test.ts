import { beforeAll, describe, expect, it } from "vitest";
import type { EndpointSlice, Ingress, IngressClass, Secret, Service } from "@klab/api";
import { buildRoutes } from "./build.ts";
import { route, type Decision, type RouteRequest } from "./route.ts";
import { selfSigned } from "./certificates.ts";
import {
  controllerConfig,
  endpointSlice,
  ingress,
  ingressClass,
  service,
  tlsSecret,
  type PathSpec,
} from "./fixtures.ts";
import type { ControllerConfig, RouteTable } from "./model.ts";
import type { CertificateMaterial } from "./tls.ts";
import { selectCertificate } from "./tls.ts";

let config: ControllerConfig;
let fake: CertificateMaterial;
beforeAll(async () => {
  fake = await selfSigned({
    commonName: "Kubernetes Ingress Controller Fake Certificate",
    dnsNames: ["ingress.local"],
    keyType: "ecdsa",
    id: "default",
  });
  config = controllerConfig(fake);
});

/** Services named in the ingresses, each with one ready endpoint 10.244.0.<n>:8080. */
function world(
  ingresses: Ingress[],
  extra: {
    classes?: IngressClass[];
    secrets?: Secret[];
    services?: Service[];
    slices?: EndpointSlice[];
  } = {},
): RouteTable {
  const names = new Set<string>();
  for (const ing of ingresses)
    for (const r of ing.spec?.rules ?? [])
      for (const p of r.http?.paths ?? []) if (p.backend.service) names.add(p.backend.service.name);
  for (const ing of ingresses)
    if (ing.spec?.defaultBackend?.service) names.add(ing.spec.defaultBackend.service.name);
  const services = extra.services ?? [...names].map((n) => service(n, { port: 80 }));
  let i = 1;
  const slices =
    extra.slices ?? [...names].map((n) => endpointSlice(n, [{ ip: `10.244.0.${i++}` }], { port: 8080 }));
  return buildRoutes(
    ingresses,
    extra.classes ?? [ingressClass("nginx")],
    services,
    slices,
    extra.secrets ?? [],
    config,
  );
}

function req(target: string, host = "foo.com", more: Partial<RouteRequest> = {}): RouteRequest {
  return {
    method: "GET",
    host,
    target,
    headers: {},
    scheme: "http",
    remoteAddr: "127.0.0.1",
    random: 0.5,
    ...more,
  };
}

/** which service a request reaches, or its status */
function reach(
  table: RouteTable,
  target: string,
  host = "foo.com",
  more: Partial<RouteRequest> = {},
): string | number {
  const d = route(table, req(target, host, more));
  return d.kind === "proxy" ? d.upstream.service! : d.status;
}

function one(paths: PathSpec[], host = "foo.com", annotations?: Record<string, string>): RouteTable {
  return world([ingress("ing", { rules: [{ host, paths }], annotations })]);
}

describe("path types (the Kubernetes documentation's examples table)", () => {
  it("Prefix / matches every path", () => {
    const t = one([{ path: "/", service: "a" }]);
    for (const p of ["/", "/foo", "/foo/bar", "/x.html"]) expect(reach(t, p)).toBe("a");
  });
  it("Exact /foo matches /foo only, not /bar or /foo/", () => {
    const t = one([{ path: "/foo", pathType: "Exact", service: "a" }]);
    expect(reach(t, "/foo")).toBe("a");
    expect(reach(t, "/bar")).toBe(404);
    expect(reach(t, "/foo/")).toBe(404);
  });
  it("Exact /foo/ does not match /foo", () => {
    expect(reach(one([{ path: "/foo/", pathType: "Exact", service: "a" }]), "/foo")).toBe(404);
  });
  it("Prefix /foo and Prefix /foo/ both match /foo and /foo/", () => {
    for (const rule of ["/foo", "/foo/"]) {
      const t = one([{ path: rule, service: "a" }]);
      expect(reach(t, "/foo")).toBe("a");
      expect(reach(t, "/foo/")).toBe("a");
    }
  });
  it("Prefix matches element by element", () => {
    expect(reach(one([{ path: "/aaa/bb", service: "a" }]), "/aaa/bbb")).toBe(404);
    const t = one([{ path: "/aaa/bbb", service: "a" }]);
    expect(reach(t, "/aaa/bbb")).toBe("a");
    expect(reach(t, "/aaa/bbb/")).toBe("a");
    expect(reach(t, "/aaa/bbb/ccc")).toBe("a");
    expect(reach(t, "/aaa/bbbxyz")).toBe(404);
    expect(reach(one([{ path: "/aaa/bbb/", service: "a" }]), "/aaa/bbb")).toBe("a");
  });
  it("the longest matching path wins", () => {
    const t = one([
      { path: "/", service: "root" },
      { path: "/aaa", service: "aaa" },
      { path: "/aaa/bbb", service: "bbb" },
    ]);
    expect(reach(t, "/aaa/ccc")).toBe("aaa");
    expect(reach(t, "/aaa/bbb")).toBe("bbb");
    expect(reach(t, "/ccc")).toBe("root");
  });
  it("a path with no match goes to the default backend (404)", () => {
    expect(reach(one([{ path: "/aaa", service: "a" }]), "/ccc")).toBe(404);
  });
  it("Exact beats Prefix at equal length", () => {
    const t = one([
      { path: "/foo", service: "prefix" },
      { path: "/foo", pathType: "Exact", service: "exact" },
    ]);
    expect(reach(t, "/foo")).toBe("exact");
    expect(reach(t, "/foo/x")).toBe("prefix");
  });
  it("matching is case-sensitive", () => {
    const t = one([{ path: "/foo", service: "a" }]);
    expect(reach(t, "/FOO")).toBe(404);
  });
  it("ImplementationSpecific is a string prefix, as in ingress-nginx", () => {
    const t = one([{ path: "/foo", pathType: "ImplementationSpecific", service: "a" }]);
    expect(reach(t, "/foobar")).toBe("a");
    expect(reach(t, "/foo.html")).toBe("a");
    expect(reach(t, "/fo")).toBe(404);
  });
  it("matches on nginx's normalized URI (decoded, // merged, dot segments resolved)", () => {
    const t = one([{ path: "/api", service: "api" }]);
    expect(reach(t, "/x/../api/v1")).toBe("api");
    expect(reach(t, "//api")).toBe("api");
    expect(reach(t, "/%61pi")).toBe("api");
    expect(reach(t, "/../etc/passwd")).toBe(400);
  });
  it("rejects Exact and Prefix paths with regex characters (strict-validate-path-type)", () => {
    const t = one([{ path: "/foo.*", service: "a" }]);
    expect(t.problems.some((p) => /only letters/.test(p.message))).toBe(true);
  });
});

describe("hosts", () => {
  it("matches exact hosts case-insensitively, ignoring the port", () => {
    const t = one([{ path: "/", service: "a" }], "foo.bar.com");
    expect(reach(t, "/", "FOO.bar.com:8080")).toBe("a");
    expect(reach(t, "/", "other.com")).toBe(404);
  });
  it("a wildcard host covers exactly one label", () => {
    const t = one([{ path: "/", service: "a" }], "*.foo.com");
    expect(reach(t, "/", "bar.foo.com")).toBe("a");
    expect(reach(t, "/", "baz.bar.foo.com")).toBe(404);
    expect(reach(t, "/", "foo.com")).toBe(404);
  });
  it("an exact host beats a wildcard", () => {
    const t = world([
      ingress("wild", { rules: [{ host: "*.foo.com", paths: [{ path: "/", service: "wild" }] }] }),
      ingress("exact", { rules: [{ host: "bar.foo.com", paths: [{ path: "/", service: "exact" }] }] }),
    ]);
    expect(reach(t, "/", "bar.foo.com")).toBe("exact");
    expect(reach(t, "/", "baz.foo.com")).toBe("wild");
  });
  it("rules without a host match any Host, a bare IP included", () => {
    const t = world([ingress("any", { rules: [{ paths: [{ path: "/", service: "a" }] }] })]);
    expect(reach(t, "/", "10.0.0.1")).toBe("a");
    expect(reach(t, "/", undefined as unknown as string)).toBe("a");
  });
});

describe("IngressClass", () => {
  it("serves ingressClassName naming a class of our controller, ignores others", () => {
    const classes = [ingressClass("nginx"), ingressClass("other", { controller: "example.com/other" })];
    const t = world(
      [
        ingress("ours", { rules: [{ host: "a.com", paths: [{ path: "/", service: "a" }] }] }),
        ingress("theirs", {
          className: "other",
          rules: [{ host: "b.com", paths: [{ path: "/", service: "b" }] }],
        }),
        ingress("missing", {
          className: "nope",
          rules: [{ host: "c.com", paths: [{ path: "/", service: "c" }] }],
        }),
      ],
      { classes },
    );
    expect(reach(t, "/", "a.com")).toBe("a");
    expect(reach(t, "/", "b.com")).toBe(404);
    expect(reach(t, "/", "c.com")).toBe(404);
    expect(t.ingresses.map((r) => r.name)).toEqual(["ours"]);
  });
  it("class-less Ingresses need the legacy annotation or a default IngressClass", () => {
    const ings = [
      ingress("legacy", {
        className: null,
        annotations: { "kubernetes.io/ingress.class": "nginx" },
        rules: [{ host: "a.com", paths: [{ path: "/", service: "a" }] }],
      }),
      ingress("legacy-other", {
        className: null,
        annotations: { "kubernetes.io/ingress.class": "traefik" },
        rules: [{ host: "b.com", paths: [{ path: "/", service: "b" }] }],
      }),
      ingress("plain", { className: null, rules: [{ host: "c.com", paths: [{ path: "/", service: "c" }] }] }),
    ];
    const without = world(ings);
    expect([
      reach(without, "/", "a.com"),
      reach(without, "/", "b.com"),
      reach(without, "/", "c.com"),
    ]).toEqual(["a", 404, 404]);
    const withDefault = world(ings, { classes: [ingressClass("nginx", { isDefault: true })] });
    expect(reach(withDefault, "/", "c.com")).toBe("c");
    expect(reach(withDefault, "/", "b.com")).toBe(404);
  });
});

describe("several Ingresses on one host", () => {
  it("merges their rules into one server", () => {
    const t = world([
      ingress("web", { rules: [{ host: "myapp.com", paths: [{ path: "/", service: "web" }] }] }),
      ingress("api", { rules: [{ host: "myapp.com", paths: [{ path: "/api", service: "api" }] }] }),
    ]);
    expect(reach(t, "/api/users", "myapp.com")).toBe("api");
    expect(reach(t, "/index.html", "myapp.com")).toBe("web");
  });
  it("the oldest Ingress wins the same host, path and pathType", () => {
    const older = ingress("older", {
      created: "2026-01-01T00:00:00Z",
      rules: [{ host: "x.com", paths: [{ path: "/", service: "old" }] }],
    });
    const newer = ingress("newer", {
      created: "2026-02-01T00:00:00Z",
      rules: [{ host: "x.com", paths: [{ path: "/", service: "new" }] }],
    });
    const t = world([newer, older]);
    expect(reach(t, "/", "x.com")).toBe("old");
    expect(t.problems.some((p) => p.ingress === "default/newer" && /already defined/.test(p.message))).toBe(
      true,
    );
  });
  it("on equal timestamps, namespace/name descending goes first (ingress-nginx's order)", () => {
    const at = "2026-01-01T00:00:00Z";
    const t = world([
      ingress("a", { created: at, rules: [{ host: "x.com", paths: [{ path: "/", service: "from-a" }] }] }),
      ingress("b", { created: at, rules: [{ host: "x.com", paths: [{ path: "/", service: "from-b" }] }] }),
    ]);
    expect(reach(t, "/", "x.com")).toBe("from-b");
  });
});

describe("default backends", () => {
  it("an Ingress with only a defaultBackend serves every host and path", () => {
    const t = world([ingress("catch", { defaultBackend: { service: "fallback" } })]);
    expect(reach(t, "/anything", "whatever.example")).toBe("fallback");
    expect(reach(t, "/", "")).toBe("fallback");
  });
  it("a defaultBackend next to rules catches unmatched paths on the hosts that Ingress created", () => {
    const t = world([
      ingress("app", {
        defaultBackend: { service: "fallback" },
        rules: [{ host: "app.com", paths: [{ path: "/api", service: "api" }] }],
      }),
    ]);
    expect(reach(t, "/api", "app.com")).toBe("api");
    expect(reach(t, "/other", "app.com")).toBe("fallback");
    expect(reach(t, "/other", "unknown.com")).toBe(404);
  });
  it("no match at all is the controller's 404, logged as upstream-default-backend", () => {
    const d = route(world([]), req("/", "nothing.com"));
    expect(d).toMatchObject({ kind: "respond", status: 404, upstreamName: "upstream-default-backend" });
  });
});

describe("upstreams", () => {
  it("a Service without ready endpoints gives 503", () => {
    const t = world([ingress("i", { rules: [{ host: "a.com", paths: [{ path: "/", service: "s" }] }] })], {
      services: [service("s")],
      slices: [endpointSlice("s", [{ ip: "10.244.0.9", ready: false }], { port: 8080 })],
    });
    expect(route(t, req("/", "a.com"))).toMatchObject({
      kind: "respond",
      status: 503,
      upstreamName: "default-s-80",
    });
  });
  it("a missing Service gives 503", () => {
    const t = world(
      [ingress("i", { rules: [{ host: "a.com", paths: [{ path: "/", service: "ghost" }] }] })],
      { services: [], slices: [] },
    );
    expect(reach(t, "/", "a.com")).toBe(503);
  });
  it("resolves a named service port to the EndpointSlice's port", () => {
    const t = world(
      [ingress("i", { rules: [{ host: "a.com", paths: [{ path: "/", service: "s", port: "http" }] }] })],
      {
        services: [
          service("s", {
            ports: [
              { name: "metrics", port: 9090 },
              { name: "http", port: 80 },
            ],
          }),
        ],
        slices: [{ ...endpointSlice("s", [{ ip: "10.244.1.5" }], { port: 8080, portName: "http" }) }],
      },
    );
    const d = route(t, req("/", "a.com"));
    expect(d.kind === "proxy" && d.upstream.endpoints.map((e) => e.address)).toEqual(["10.244.1.5:8080"]);
    expect(d.upstreamName).toBe("default-s-http");
  });
  it("service-upstream sends to the ClusterIP and the Service port", () => {
    const t = one([{ path: "/", service: "s" }], "a.com", {
      "nginx.ingress.kubernetes.io/service-upstream": "true",
    });
    const d = route(t, req("/", "a.com"));
    expect(d.kind === "proxy" && d.upstream.endpoints.map((e) => e.address)).toEqual(["10.96.0.100:80"]);
  });
});

describe("TLS and redirects", () => {
  it("chooses certificates by SNI: exact, one-label wildcard, then the default", async () => {
    const a = await selfSigned({ commonName: "a.com", dnsNames: ["a.com"], keyType: "ecdsa" });
    const w = await selfSigned({ commonName: "*.w.com", dnsNames: ["*.w.com"], keyType: "ecdsa" });
    const t = world(
      [
        ingress("a", {
          tls: [{ hosts: ["a.com"], secretName: "a-tls" }],
          rules: [{ host: "a.com", paths: [{ path: "/", service: "a" }] }],
        }),
        ingress("w", {
          tls: [{ hosts: ["*.w.com"], secretName: "w-tls" }],
          rules: [{ host: "*.w.com", paths: [{ path: "/", service: "w" }] }],
        }),
      ],
      { secrets: [tlsSecret("a-tls", a), tlsSecret("w-tls", w)] },
    );
    expect(selectCertificate(t.certificates, fake, "A.com.").id).toBe("default/a-tls");
    expect(selectCertificate(t.certificates, fake, "x.w.com").id).toBe("default/w-tls");
    expect(selectCertificate(t.certificates, fake, "x.y.w.com").id).toBe("default");
    expect(selectCertificate(t.certificates, fake, undefined).id).toBe("default");
  });
  it("a missing secret or a certificate that does not cover the host falls back to the fake certificate", async () => {
    const other = await selfSigned({ commonName: "other.com", dnsNames: ["other.com"], keyType: "ecdsa" });
    const t = world(
      [
        ingress("m", {
          tls: [{ hosts: ["m.com"], secretName: "nope" }],
          rules: [{ host: "m.com", paths: [{ path: "/", service: "m" }] }],
        }),
        ingress("c", {
          tls: [{ hosts: ["c.com"], secretName: "other" }],
          rules: [{ host: "c.com", paths: [{ path: "/", service: "c" }] }],
        }),
      ],
      { secrets: [tlsSecret("other", other)] },
    );
    expect(selectCertificate(t.certificates, fake, "m.com").id).toBe("default");
    expect(selectCertificate(t.certificates, fake, "c.com").id).toBe("default");
  });
  it("plain HTTP to a host with TLS gets 308 to https, one trailing slash removed", () => {
    const t = world([
      ingress("t", {
        tls: [{ hosts: ["t.com"], secretName: "missing" }],
        rules: [{ host: "t.com", paths: [{ path: "/", service: "t" }] }],
      }),
    ]);
    expect(route(t, req("/", "t.com"))).toMatchObject({
      kind: "redirect",
      status: 308,
      url: "https://t.com",
    });
    expect(route(t, req("/a/b?x=1", "t.com:8080"))).toMatchObject({
      kind: "redirect",
      url: "https://t.com/a/b?x=1",
    });
    expect(route(t, req("/", "t.com", { scheme: "https" }))).toMatchObject({ kind: "proxy", hsts: true });
  });
  it("ssl-redirect false keeps http; force-ssl-redirect redirects even without TLS", () => {
    const off = world([
      ingress("t", {
        annotations: { "nginx.ingress.kubernetes.io/ssl-redirect": "false" },
        tls: [{ hosts: ["t.com"] }],
        rules: [{ host: "t.com", paths: [{ path: "/", service: "t" }] }],
      }),
    ]);
    expect(route(off, req("/", "t.com")).kind).toBe("proxy");
    const force = one([{ path: "/", service: "a" }], "f.com", {
      "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
    });
    expect(route(force, req("/x", "f.com"))).toMatchObject({
      kind: "redirect",
      status: 308,
      url: "https://f.com/x",
    });
  });
  it("a host without TLS is not redirected", () => {
    expect(route(one([{ path: "/", service: "a" }]), req("/")).kind).toBe("proxy");
  });
});

describe("redirect annotations", () => {
  it("permanent-redirect answers 301 (or its code), temporal-redirect 302, before the https redirect", () => {
    const p = one([{ path: "/", service: "a" }], "p.com", {
      "nginx.ingress.kubernetes.io/permanent-redirect": "https://www.example.com/new",
      "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
    });
    expect(route(p, req("/old", "p.com"))).toMatchObject({
      kind: "redirect",
      status: 301,
      url: "https://www.example.com/new",
    });
    const c = one([{ path: "/", service: "a" }], "c.com", {
      "nginx.ingress.kubernetes.io/permanent-redirect": "/elsewhere",
      "nginx.ingress.kubernetes.io/permanent-redirect-code": "308",
    });
    expect(route(c, req("/", "c.com"))).toMatchObject({ status: 308, url: "/elsewhere" });
    const t = one([{ path: "/", service: "a" }], "t.com", {
      "nginx.ingress.kubernetes.io/temporal-redirect": "https://maintenance.example.com",
    });
    expect(route(t, req("/x", "t.com"))).toMatchObject({
      status: 302,
      url: "https://maintenance.example.com",
    });
  });
  it("app-root sends / (only /) to the application's root with 302", () => {
    const t = one([{ path: "/", service: "a" }], "app.com", {
      "nginx.ingress.kubernetes.io/app-root": "/app1",
    });
    expect(route(t, req("/", "app.com:8080"))).toMatchObject({
      kind: "redirect",
      status: 302,
      url: "http://app.com:8080/app1",
    });
    expect(route(t, req("/app1", "app.com")).kind).toBe("proxy");
  });
  it("rejects a redirect that is not a URL", () => {
    const t = one([{ path: "/", service: "a" }], "b.com", {
      "nginx.ingress.kubernetes.io/permanent-redirect": "not a url",
    });
    expect(t.problems.some((p) => /permanent-redirect/.test(p.message))).toBe(true);
    expect(route(t, req("/", "b.com")).kind).toBe("proxy");
  });
});

describe("regex mode and rewrite-target", () => {
  it("rewrite-target substitutes capture groups and keeps the query", () => {
    const t = one(
      [{ path: "/something(/|$)(.*)", pathType: "ImplementationSpecific", service: "a" }],
      "r.com",
      {
        "nginx.ingress.kubernetes.io/rewrite-target": "/$2",
      },
    );
    const target = (p: string): string | undefined => {
      const d = route(t, req(p, "r.com"));
      return d.kind === "proxy" ? d.upstreamTarget : undefined;
    };
    expect(target("/something")).toBe("/");
    expect(target("/something/")).toBe("/");
    expect(target("/something/new")).toBe("/new");
    expect(target("/something/new?q=1")).toBe("/new?q=1");
  });
  it("regex mode makes every path of the host a case-insensitive ^prefix regex, Exact included", () => {
    const t = world([
      ingress("plain", {
        rules: [{ host: "x.com", paths: [{ path: "/exact", pathType: "Exact", service: "exact" }] }],
      }),
      ingress("rx", {
        annotations: { "nginx.ingress.kubernetes.io/use-regex": "true" },
        rules: [
          {
            host: "x.com",
            paths: [{ path: "/api/v[0-9]+", pathType: "ImplementationSpecific", service: "api" }],
          },
        ],
      }),
    ]);
    expect(reach(t, "/EXACT/more", "x.com")).toBe("exact");
    expect(reach(t, "/api/v2/users", "x.com")).toBe("api");
    expect(reach(t, "/API/V1", "x.com")).toBe("api");
  });
  it("in regex mode the longer path is tried first (the documented trap)", () => {
    const t = one(
      [
        { path: "/foo/bar/bar", pathType: "ImplementationSpecific", service: "literal" },
        { path: "/foo/bar/[A-Z0-9]{3}", pathType: "ImplementationSpecific", service: "regex" },
      ],
      "x.com",
      { "nginx.ingress.kubernetes.io/use-regex": "true" },
    );
    expect(reach(t, "/foo/bar/bar", "x.com")).toBe("regex");
  });
  it("an invalid regular expression is reported and its location dropped", () => {
    const t = one([{ path: "/a(", pathType: "ImplementationSpecific", service: "a" }], "x.com", {
      "nginx.ingress.kubernetes.io/use-regex": "true",
    });
    expect(t.problems.some((p) => /regular expression/.test(p.message))).toBe(true);
    expect(reach(t, "/a(", "x.com")).toBe(404);
  });
});

describe("canary", () => {
  function canaryWorld(annotations: Record<string, string>): RouteTable {
    return world([
      ingress("main", { rules: [{ host: "c.com", paths: [{ path: "/", service: "stable" }] }] }),
      ingress("canary", {
        annotations: { "nginx.ingress.kubernetes.io/canary": "true", ...annotations },
        rules: [{ host: "c.com", paths: [{ path: "/", service: "canary" }] }],
      }),
    ]);
  }
  it("by header: always → canary, never → main, other values fall through to the weight", () => {
    const t = canaryWorld({
      "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
      "nginx.ingress.kubernetes.io/canary-weight": "100",
    });
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "always" } })).toBe("canary");
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "never" } })).toBe("stable");
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "maybe" } })).toBe("canary");
  });
  it("by header value: only the exact value; always loses its meaning", () => {
    const t = canaryWorld({
      "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
      "nginx.ingress.kubernetes.io/canary-by-header-value": "yes",
    });
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "yes" } })).toBe("canary");
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "always" } })).toBe("stable");
  });
  it("by header pattern", () => {
    const t = canaryWorld({
      "nginx.ingress.kubernetes.io/canary-by-header": "X-User",
      "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^beta-",
    });
    expect(reach(t, "/", "c.com", { headers: { "x-user": "beta-7" } })).toBe("canary");
    expect(reach(t, "/", "c.com", { headers: { "x-user": "alpha" } })).toBe("stable");
  });
  it("header beats cookie, cookie beats weight", () => {
    const t = canaryWorld({
      "nginx.ingress.kubernetes.io/canary-by-header": "X-Canary",
      "nginx.ingress.kubernetes.io/canary-by-cookie": "canary",
      "nginx.ingress.kubernetes.io/canary-weight": "100",
    });
    expect(reach(t, "/", "c.com", { headers: { "x-canary": "never", cookie: "canary=always" } })).toBe(
      "stable",
    );
    expect(reach(t, "/", "c.com", { headers: { cookie: "a=b; canary=never" } })).toBe("stable");
    expect(reach(t, "/", "c.com", { headers: { cookie: "canary=always" } })).toBe("canary");
  });
  it("weight draws 1..total and compares with <=", () => {
    const t = canaryWorld({ "nginx.ingress.kubernetes.io/canary-weight": "30" });
    expect(reach(t, "/", "c.com", { random: 0.29 })).toBe("canary");
    expect(reach(t, "/", "c.com", { random: 0.3 })).toBe("stable");
    const zero = canaryWorld({});
    expect(reach(zero, "/", "c.com", { random: 0 })).toBe("stable");
  });
  it("records the canary as the alternative upstream", () => {
    const d = route(canaryWorld({ "nginx.ingress.kubernetes.io/canary-weight": "100" }), req("/", "c.com"));
    expect(d).toMatchObject({
      upstreamName: "default-stable-80",
      alternativeUpstreamName: "default-canary-80",
    });
  });
  it("a canary without a main Ingress never serves", () => {
    const t = world([
      ingress("lonely", {
        annotations: { "nginx.ingress.kubernetes.io/canary": "true" },
        rules: [{ host: "l.com", paths: [{ path: "/", service: "c" }] }],
      }),
    ]);
    expect(reach(t, "/", "l.com")).toBe(404);
  });
});

describe("access control annotations", () => {
  it("whitelist-source-range answers 403 outside the ranges", () => {
    const t = one([{ path: "/", service: "a" }], "w.com", {
      "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/8, 192.168.1.1",
    });
    expect(reach(t, "/", "w.com", { remoteAddr: "10.1.2.3" })).toBe("a");
    expect(reach(t, "/", "w.com", { remoteAddr: "::ffff:192.168.1.1" })).toBe("a");
    expect(reach(t, "/", "w.com", { remoteAddr: "127.0.0.1" })).toBe(403);
  });
  it("an unparsable source range denies the location (503) and is reported", () => {
    const t = one([{ path: "/", service: "a" }], "w.com", {
      "nginx.ingress.kubernetes.io/whitelist-source-range": "10.0.0.0/99",
    });
    expect(reach(t, "/", "w.com")).toBe(503);
    expect(t.problems.length).toBeGreaterThan(0);
  });
  it("proxy-body-size: a declared body above the limit gets 413 (default 1m)", () => {
    const t = one([{ path: "/", service: "a" }]);
    expect(reach(t, "/", "foo.com", { contentLength: 1024 * 1024 })).toBe("a");
    expect(reach(t, "/", "foo.com", { contentLength: 1024 * 1024 + 1 })).toBe(413);
    const big = one([{ path: "/", service: "a" }], "foo.com", {
      "nginx.ingress.kubernetes.io/proxy-body-size": "0",
    });
    expect(reach(big, "/", "foo.com", { contentLength: 1e9 })).toBe("a");
  });
  it("limit-rps hands the shell a per-location limit with burst = 5 × rps", () => {
    const d: Decision = route(
      one([{ path: "/", service: "a" }], "foo.com", { "nginx.ingress.kubernetes.io/limit-rps": "2" }),
      req("/"),
    );
    expect(d.rateLimit?.limit).toEqual({ rps: 2, burst: 10 });
  });
  it("cookie affinity reads its key only from a cookie made for this upstream", async () => {
    const { backendKey } = await import("./annotations/affinity.ts");
    const t = one([{ path: "/", service: "a" }], "foo.com", {
      "nginx.ingress.kubernetes.io/affinity": "cookie",
    });
    const fresh = route(t, req("/"));
    expect(fresh.kind === "proxy" && fresh.affinity).toMatchObject({
      config: { cookieName: "INGRESSCOOKIE" },
      key: undefined,
      cookiePath: "/",
    });
    const back = route(
      t,
      req("/", "foo.com", { headers: { cookie: `INGRESSCOOKIE=k1|${backendKey("default-a-80")}` } }),
    );
    expect(back.kind === "proxy" && back.affinity?.key).toBe("k1");
    const foreign = route(
      t,
      req("/", "foo.com", { headers: { cookie: `INGRESSCOOKIE=k1|${backendKey("other")}` } }),
    );
    expect(foreign.kind === "proxy" && foreign.affinity?.key).toBeUndefined();
  });
});
