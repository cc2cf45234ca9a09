import { describe, expect, it } from "vitest";
import { parseCorefile } from "./parse.ts";
import { parseKey, reverseZones } from "./keys.ts";
import { CorefileError } from "./lexer.ts";

const kubeadm = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`;

describe("Corefile grammar", () => {
  it("reads kubeadm's Corefile into one server block with nested option blocks", () => {
    const { blocks } = parseCorefile(kubeadm, "Corefile");
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.keys).toEqual([".:53"]);
    const names = blocks[0]!.directives.map((d) => d.name);
    expect(names).toEqual([
      "errors",
      "health",
      "ready",
      "kubernetes",
      "prometheus",
      "forward",
      "cache",
      "loop",
      "reload",
      "loadbalance",
    ]);
    const k8s = blocks[0]!.directives[3]!;
    expect(k8s.args).toEqual(["cluster.local", "in-addr.arpa", "ip6.arpa"]);
    expect(k8s.line).toBe(7);
    expect(k8s.block!.map((d) => [d.name, d.args, d.line])).toEqual([
      ["pods", ["insecure"], 8],
      ["fallthrough", ["in-addr.arpa", "ip6.arpa"], 9],
      ["ttl", ["30"], 10],
    ]);
  });

  it("takes several keys, ports and schemes, comments and quoted tokens", () => {
    const { blocks } = parseCorefile(
      `# comment line
example.org example.net:1053 dns://cluster.local:5353 {
  hosts { # trailing comment
    10.0.0.1 "a b" # quoted token with a space
  }
}
. { forward . 127.0.0.1 }`,
      "Corefile",
    );
    expect(blocks.map((b) => b.keys)).toEqual([
      ["example.org", "example.net:1053", "dns://cluster.local:5353"],
      ["."],
    ]);
    expect(blocks[0]!.directives[0]!.block![0]!.args).toEqual(["a b"]);
    expect(blocks[1]!.directives[0]!.args).toEqual([".", "127.0.0.1"]);
  });

  it("continues keys after a trailing comma", () => {
    const { blocks } = parseCorefile(`example.org,\nexample.net {\n  log\n}`, "Corefile");
    expect(blocks[0]!.keys).toEqual(["example.org", "example.net"]);
  });

  it("accepts the brace-less form of a single server", () => {
    const { blocks } = parseCorefile(`.:1053\nlog\nerrors\n`, "Corefile");
    expect(blocks[0]!.keys).toEqual([".:1053"]);
    expect(blocks[0]!.directives.map((d) => d.name)).toEqual(["log", "errors"]);
  });

  it("substitutes {$VAR} and {%VAR%} from the environment", () => {
    const { blocks } = parseCorefile(`.:{$PORT} {\n  forward . {%UP%}\n}`, "Corefile", {
      env: { PORT: "1053", UP: "127.0.0.1:5300" },
    });
    expect(blocks[0]!.keys).toEqual([".:1053"]);
    expect(blocks[0]!.directives[0]!.args).toEqual([".", "127.0.0.1:5300"]);
  });

  it("expands snippets and file imports, keeping each token's own file and line", () => {
    const files: Record<string, string> = { "/etc/coredns/extra.conf": "log\nerrors\n" };
    const { blocks, files: read } = parseCorefile(
      `(common) {\n  cache 30\n  loop\n}\n.:53 {\n  import common\n  import extra.conf\n}\n`,
      "/etc/coredns/Corefile",
      {
        readFile: (p) =>
          files[p] ??
          (() => {
            throw new Error("ENOENT");
          })(),
      },
    );
    const ds = blocks[0]!.directives;
    expect(ds.map((d) => d.name)).toEqual(["cache", "loop", "log", "errors"]);
    expect([ds[0]!.file, ds[0]!.line]).toEqual(["/etc/coredns/Corefile", 2]);
    expect([ds[2]!.file, ds[2]!.line]).toEqual(["/etc/coredns/extra.conf", 1]);
    expect(read).toEqual(["/etc/coredns/Corefile", "/etc/coredns/extra.conf"]);
  });

  it("reports a missing import with the importing line", () => {
    expect(() =>
      parseCorefile(`.:53 {\n  import nothere.conf\n}`, "/x/Corefile", {
        readFile: () => {
          throw new Error("no such file");
        },
      }),
    ).toThrow(/^\/x\/Corefile:2 - Error during parsing: Could not import \/x\/nothere.conf/);
  });

  it("reports unbalanced braces and unterminated quotes with file:line", () => {
    expect(() => parseCorefile(`.:53 {\n  log\n`, "Corefile")).toThrow(
      "Corefile:1 - Error during parsing: Unexpected EOF: missing '}'",
    );
    expect(() => parseCorefile(`.:53 {\n  hosts "abc\n}`, "Corefile")).toThrow(
      /Corefile:2 - Error during parsing: Unterminated quoted string/,
    );
    try {
      parseCorefile(`.:53 {\n}\n}`, "Corefile");
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CorefileError);
      expect((err as CorefileError).line).toBe(3);
    }
  });
});

describe("server block keys", () => {
  it("splits zone, port and scheme", () => {
    expect(parseKey(".:53")).toEqual([{ zone: ".", port: 53 }]);
    expect(parseKey("dns://cluster.local:5353")).toEqual([{ zone: "cluster.local.", port: 5353 }]);
    expect(parseKey("Example.ORG")).toEqual([{ zone: "example.org.", port: undefined }]);
    expect(parseKey(":1053")).toEqual([{ zone: ".", port: 1053 }]);
  });
  it("turns CIDRs into reverse zones", () => {
    expect(parseKey("10.0.0.0/8:53")).toEqual([{ zone: "10.in-addr.arpa.", port: 53 }]);
    expect(reverseZones("10.96.0.0/16")).toEqual(["96.10.in-addr.arpa."]);
    expect(reverseZones("fd00::/16")).toEqual(["0.0.d.f.ip6.arpa."]);
  });
  it("refuses schemes klab does not serve", () => {
    expect(() => parseKey("tls://.:853")).toThrow(/unsupported scheme 'tls:\/\/'/);
  });
});
