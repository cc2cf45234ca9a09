/**
 * `npm run bench [name…]`: runs every test/bench/<name>.bench.ts (or the named ones) one after
 * another, so they do not measure each other, and prints each one's figures as it goes.
 */
import { readdirSync } from "node:fs";
import { basename, join } from "node:path";

const dir = import.meta.dirname;
const available = readdirSync(dir)
  .filter((f) => f.endsWith(".bench.ts"))
  .map((f) => basename(f, ".bench.ts"))
  .sort();
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`unknown benchmark ${unknown.join(", ")}; available: ${available.join(", ")}`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted.length ? wanted : available) {
  console.log(`\n=== ${name} ===`);
  const started = Date.now();
  try {
    const mod = (await import(join(dir, `${name}.bench.ts`))) as { default: () => Promise<void> };
    await mod.default();
    console.log(`(${name}: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed++;
    console.error(`${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
  }
}
process.exit(failed ? 1 : 0);
