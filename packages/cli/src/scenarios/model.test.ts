import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findScenario, loadCatalog, loadScenario, scenariosDir } from "./catalog.ts";
import { manifestNamespaces, parseManifest, parseScenario, ScenarioError } from "./model.ts";

const minimal = `
id: demo
title: A demo
difficulty: easy
guide: ["Service Networking > Service Discovery"]
story: something is broken
setup:
  manifests: [setup.yaml]
hints: [look closer]
check:
  - says: the frontend gets no answer
    http:
      from: { pod: { namespace: scn-demo, selector: app=frontend } }
      url: http://backend/
solution:
  kubectl:
    - ["-n", "scn-demo", "get", "pods"]
  text: fix it
explanation: because
`;

function problems(text: string, folder?: string): string[] {
  try {
    parseScenario(text, "lab-scenarios/01-demo/scenario.yaml", folder);
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as Error).message).toContain("lab-scenarios/01-demo/scenario.yaml");
    return (err as ScenarioError).problems;
  }
  return [];
}

describe("a scenario.yaml", () => {
  it("parses with the defaults of the format", () => {
    const s = parseScenario(minimal, "f", "01-demo");
    expect(s.id).toBe("demo");
    expect(s.check).toHaveLength(1);
    const c = s.check[0]!;
    expect(c.kind).toBe("http");
    if (c.kind !== "http") return;
    expect(c.http).toMatchObject({ expectStatus: 200, count: 1, timeoutSeconds: 5, url: "http://backend/" });
    expect(c.http.from).toEqual({ pod: { namespace: "scn-demo", selector: "app=frontend" } });
    expect(s.setup).toEqual({ manifests: ["setup.yaml"], kubectl: [], faults: [], ready: [] });
    expect(s.reset.kubectl).toEqual([]);
  });

  it("names the field of every problem, all at once", () => {
    const bad = minimal
      .replace("difficulty: easy", "difficulty: trivial")
      .replace("url: http://backend/", "url: ftp://backend/\n      count: 0")
      .replace("story: something is broken", "");
    const p = problems(bad);
    expect(p).toContain('difficulty: must be one of easy, medium, hard, got "trivial"');
    expect(p).toContain('check[0].http.url: must be an http:// or https:// URL, got "ftp://backend/"');
    expect(p).toContain("check[0].http.count: must be an integer from 1 to 100, got 0");
    expect(p).toContain("story: required");
  });

  it("wants the id to match its folder", () => {
    expect(problems(minimal, "01-other")).toEqual([
      "id: must equal the folder name without its NN- prefix (folder 01-other)",
    ]);
    expect(problems(minimal, "01-demo")).toEqual([]);
  });

  it("rejects unknown fields, so a typo is not silently ignored", () => {
    expect(problems(minimal.replace("hints:", "hintz: [x]\nhints:"))[0]).toMatch(/^hintz: unknown field/);
  });

  it("wants exactly one probe kind per check, and a says", () => {
    const two = minimal.replace(
      "  - says: the frontend gets no answer\n",
      "  - says: the frontend gets no answer\n    pods: { namespace: a, selector: app=x }\n",
    );
    expect(problems(two)).toContain(
      "check[0]: needs exactly one probe kind of http, dns, tls, endpoints, pods, got http, pods",
    );
    const noSays = minimal.replace("  - says: the frontend gets no answer\n    http:", "  - http:");
    expect(problems(noSays)).toContain("check[0].says: required");
  });

  it("checks vantage points and probe fields", () => {
    const p = problems(
      minimal.replace(
        "check:",
        `check:
  - says: x
    dns: { from: { host: true }, name: backend, expect: maybe }
  - says: y
    pods: { namespace: n, selector: "app in (a b", minReady: 2, maxReady: 1 }
  - says: z
    http: { from: { pod: { namespace: n } }, url: "http://a/", minDistinctBodies: 3 }`,
      ),
    );
    expect(p).toContain("check[0].dns.from: a DNS probe runs in a pod or on a node, not on the host");
    expect(p).toContain('check[0].dns.expect: must be answer or nxdomain, got "maybe"');
    expect(p).toContain('check[1].pods.selector: not a label selector: "app in (a b"');
    expect(p).toContain("check[1].pods.maxReady: is less than minReady (2)");
    expect(p).toContain("check[2].http.from.pod: needs a selector or a name");
    expect(p).toContain("check[2].http.minDistinctBodies: is more than count (1): it could never pass");
  });

  it("accepts expectStatus 0 (no answer at all) but not other non-HTTP statuses", () => {
    expect(
      problems(minimal.replace("url: http://backend/", "url: http://backend/\n      expectStatus: 0")),
    ).toEqual([]);
    expect(
      problems(minimal.replace("url: http://backend/", "url: http://backend/\n      expectStatus: 42")),
    ).toEqual([
      "check[0].http.expectStatus: must be an HTTP status (100-599), or 0 for no answer at all (refused, timed out)",
    ]);
  });

  it("wants argv lists for kubectl and manifests inside the folder", () => {
    const p = problems(
      minimal
        .replace('    - ["-n", "scn-demo", "get", "pods"]', '    - "kubectl get pods"')
        .replace("manifests: [setup.yaml]", "manifests: [../x.yaml]"),
    );
    expect(p).toContain("solution.kubectl[0]: must be a non-empty list of strings (one argv)");
    expect(p).toContain('setup.manifests[0]: must be a path inside the exercise\'s folder, got "../x.yaml"');
  });

  it("reports YAML syntax errors and non-mappings", () => {
    expect(problems("id: [unclosed")[0]).toMatch(/^not valid YAML/);
    expect(problems("- a list")).toEqual(["must be a YAML mapping (id, title, story, ...)"]);
  });
});

describe("manifests", () => {
  it("lists the Namespaces they create", () => {
    const objs = parseManifest(
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: scn-a }\n---\n---\napiVersion: v1\nkind: Service\nmetadata: { name: s, namespace: scn-a }\n",
      "m.yaml",
    );
    expect(objs).toHaveLength(2);
    expect(manifestNamespaces(objs)).toEqual(["scn-a"]);
  });

  it("say which document lacks what", () => {
    expect(() => parseManifest("kind: Service\nmetadata: {}\n", "m.yaml")).toThrow(
      "m.yaml: document 1: missing apiVersion, metadata.name",
    );
  });
});

describe("exercise folders", () => {
  const root = mkdtempSync(join(tmpdir(), "klab-scenarios-"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("must hold the manifests they name; a broken one does not hide the others", () => {
    mkdirSync(join(root, "01-demo"));
    writeFileSync(join(root, "01-demo", "scenario.yaml"), minimal);
    expect(() => loadScenario(join(root, "01-demo"))).toThrow(
      "setup.manifests[0]: setup.yaml does not exist in 01-demo/",
    );
    writeFileSync(
      join(root, "01-demo", "setup.yaml"),
      "apiVersion: v1\nkind: Namespace\nmetadata: { name: scn-demo }\n",
    );
    mkdirSync(join(root, "02-broken"));
    writeFileSync(join(root, "02-broken", "scenario.yaml"), "id: [");
    const c = loadCatalog(root);
    expect(c.scenarios.map((s) => s.id)).toEqual(["demo"]);
    expect(c.scenarios[0]!.namespaces).toEqual(["scn-demo"]);
    expect(c.errors).toHaveLength(1);
    expect(findScenario(c, "1").id).toBe("demo");
    expect(findScenario(c, "01-demo").id).toBe("demo");
    expect(() => findScenario(c, "nope")).toThrow('no exercise "nope"');
  });
});

describe("lab-scenarios/", () => {
  // Every exercise in the repository, whoever wrote it, must load and validate.
  const c = loadCatalog(scenariosDir());
  it("holds exercises that all load", () => {
    expect(c.errors.map((e) => e.message)).toEqual([]);
    expect(c.scenarios.length).toBeGreaterThan(0);
  });

  it.each(c.scenarios.map((s) => [s.folder, s] as const))("%s is complete", (_, s) => {
    expect(new Set(c.scenarios.map((x) => x.id)).size).toBe(c.scenarios.length);
    expect(s.hints.length).toBeGreaterThan(0);
    expect(s.solution.kubectl.length).toBeGreaterThan(0);
    expect(s.namespaces.every((n) => n.startsWith("scn-"))).toBe(true);
    // a check's says is a symptom: it must not hand out the solution's commands
    for (const item of s.check) expect(item.says).not.toMatch(/kubectl /);
  });
});
