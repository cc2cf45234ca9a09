// toYaml against the real kubectl 1.32 printer: the same data must print byte for byte the same.
import { execFileSync } from "node:child_process";
import { expect, it } from "vitest";
import { describeWith } from "../../../test/support/prereq.ts";
import { toYaml } from "./io.ts";

const tricky = [
  " lead",
  "trail ",
  "ünï",
  "null",
  "Yes",
  "0x1F",
  "1_000",
  "0o17",
  "0755",
  "1:20",
  "2024-01-01",
  "=",
  "<<",
  ".inf",
  ":",
  "- a",
  "&a",
  "!x",
  "%x",
  "`x",
  "a: ",
  "? x",
  "a,b",
  "{x",
  "x]",
  "1.5",
  ".5",
  "._",
  "1e3",
  "a\nb\n",
  "a \nb",
  "line\n",
  "\n",
  "multi\n\nline\n\n",
  " indented\nline",
  "x".repeat(120),
  "a b ".repeat(40).trim(),
  "x: y ".repeat(30),
  "'q' ".repeat(30),
  "tab\t ".repeat(30),
  'with"quote',
  "back\\slash",
  "c#d",
  "a #b",
  "a'b",
  "-",
  "---",
  "...",
  "a\r\nb",
  "  ",
  "\t",
  "🙂",
  "\u00a0x",
  "x\u2028y",
  "key:",
  "-a",
];

describeWith({ tools: ["kubectl"] }, "YAML as kubectl prints it", () => {
  it("matches kubectl create --dry-run=client -o yaml for strings of every style", () => {
    const data: Record<string, string> = {};
    const args = ["create", "configmap", "cm", "--dry-run=client", "-o", "yaml"];
    tricky.forEach((v, i) => {
      const k = `k${String(i).padStart(2, "0")}`;
      data[k] = v;
      args.push(`--from-literal=${k}=${v}`);
    });
    const theirs = execFileSync("kubectl", args, { encoding: "utf8" });
    const mine = toYaml({
      apiVersion: "v1",
      data,
      kind: "ConfigMap",
      metadata: { creationTimestamp: null, name: "cm" },
    });
    expect(mine).toBe(theirs);
  });

  it("matches kubectl for a Deployment", () => {
    const json = execFileSync(
      "kubectl",
      [
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=3",
        "--port=80",
        "--dry-run=client",
        "-o",
        "json",
      ],
      { encoding: "utf8" },
    );
    const yaml = execFileSync(
      "kubectl",
      [
        "create",
        "deployment",
        "web",
        "--image=nginx:1.27",
        "--replicas=3",
        "--port=80",
        "--dry-run=client",
        "-o",
        "yaml",
      ],
      { encoding: "utf8" },
    );
    expect(toYaml(JSON.parse(json))).toBe(yaml);
  });

  it("matches kubectl for objects with nested lists, annotations and long text", () => {
    const cmds: Array<[string[], string[]]> = [
      [
        ["create", "job", "j", "--image=busybox"],
        ["--", "sh", "-c", "echo: hi; yes", "a  b", "", "- x"],
      ],
      [
        [
          "create",
          "ingress",
          "web",
          "--class=nginx",
          "--rule=foo.com/bar*=svc1:8080,tls=my-cert",
          "--rule=/x=svc2:http",
          "--annotation=nginx.ingress.kubernetes.io/rewrite-target=/$1",
        ],
        [],
      ],
      [
        [
          "create",
          "priorityclass",
          "high",
          "--value=1000",
          "--description=a long description that goes on and on past eighty columns so that go-yaml folds it over two lines",
        ],
        [],
      ],
    ];
    for (const [cmd, tail] of cmds) {
      const run = (o: string) =>
        execFileSync("kubectl", [...cmd, "--dry-run=client", "-o", o, ...tail], { encoding: "utf8" });
      expect(toYaml(JSON.parse(run("json"))), cmd.join(" ")).toBe(run("yaml"));
    }
  });
});
