#!/usr/bin/env node
// The `klab` command runs from TypeScript sources: tsx compiles them on load.
import { register } from "tsx/esm/api";

register();
await import("../src/main.ts");
