import type { Command } from "commander";

/**
 * Each subcommand lives in its own module under ./commands/ and exports `register(program)`.
 * This list is the one place that wires them, so `klab --help` shows every command.
 */
export function registerCommands(_program: Command): void {}
