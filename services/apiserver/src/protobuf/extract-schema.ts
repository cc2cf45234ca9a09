// Regenerates schema.json: the protobuf field tables of the Kubernetes types klab decodes,
// read from the gzipped FileDescriptorProtos that Go's generated code embeds in a kubectl binary.
// Usage: npx tsx services/apiserver/src/protobuf/extract-schema.ts /path/to/kubectl-1.32
import { readFileSync, writeFileSync } from "node:fs";
import zlib from "node:zlib";
import { fields } from "./wire.ts";

const WANTED = [
  "k8s.io/api/core/v1/generated.proto",
  "k8s.io/api/apps/v1/generated.proto",
  "k8s.io/api/networking/v1/generated.proto",
  "k8s.io/api/discovery/v1/generated.proto",
  "k8s.io/api/coordination/v1/generated.proto",
  "k8s.io/api/autoscaling/v1/generated.proto",
  "k8s.io/api/events/v1/generated.proto",
  "k8s.io/api/policy/v1/generated.proto",
  "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto",
  "k8s.io/apimachinery/pkg/runtime/generated.proto",
  "k8s.io/apimachinery/pkg/util/intstr/generated.proto",
  "k8s.io/apimachinery/pkg/api/resource/generated.proto",
];

/** [number, name, label (1 optional, 3 repeated), type, typeName] */
type FieldRow = [number, string, number, number, string];
const messages: Record<string, { fields: FieldRow[]; mapEntry?: boolean }> = {};
const str = (b: Uint8Array) => Buffer.from(b).toString("utf8");

function message(buf: Uint8Array, prefix: string): void {
  let name = "";
  const rows: FieldRow[] = [];
  const nested: Uint8Array[] = [];
  let mapEntry = false;
  for (const f of fields(buf)) {
    if (f.num === 1) name = str(f.bytes!);
    else if (f.num === 2) {
      const row: FieldRow = [0, "", 1, 0, ""];
      for (const g of fields(f.bytes!)) {
        if (g.num === 1) row[1] = str(g.bytes!);
        else if (g.num === 3) row[0] = Number(g.varint);
        else if (g.num === 4) row[2] = Number(g.varint);
        else if (g.num === 5) row[3] = Number(g.varint);
        else if (g.num === 6) row[4] = str(g.bytes!);
      }
      rows.push(row);
    } else if (f.num === 3) nested.push(f.bytes!);
    else if (f.num === 7) for (const o of fields(f.bytes!)) if (o.num === 7 && o.varint) mapEntry = true;
  }
  const full = `${prefix}.${name}`;
  messages[full] = mapEntry ? { fields: rows, mapEntry } : { fields: rows };
  for (const n of nested) message(n, full);
}

const bin = readFileSync(process.argv[2] ?? "/usr/bin/kubectl");
const sig = Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00]);
const found = new Set<string>();
for (let off = bin.indexOf(sig); off >= 0; off = bin.indexOf(sig, off + 1)) {
  let out: Buffer;
  try {
    out = zlib.inflateRawSync(bin.subarray(off + 10, off + 10 + 1_000_000), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
  } catch {
    continue;
  }
  let name = "";
  let pkg = "";
  const msgs: Uint8Array[] = [];
  try {
    for (const f of fields(out)) {
      if (f.num === 1) name = str(f.bytes!);
      else if (f.num === 2) pkg = str(f.bytes!);
      else if (f.num === 4) msgs.push(f.bytes!);
    }
  } catch {
    continue;
  }
  if (!WANTED.includes(name) || found.has(name)) continue;
  found.add(name);
  for (const m of msgs) message(m, `.${pkg}`);
}
const missing = WANTED.filter((w) => !found.has(w));
if (missing.length) throw new Error(`not found in the binary: ${missing.join(", ")}`);
const target = new URL("./schema.json", import.meta.url);
writeFileSync(target, JSON.stringify(messages) + "\n");
console.log(`${Object.keys(messages).length} messages from ${found.size} files → ${target.pathname}`);
