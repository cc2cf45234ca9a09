/**
 * Names every test that passed only on a retry, so that a flaky test stays visible in the output
 * (vitest's default reporter counts it as passed and says nothing).
 */
import type { Reporter, TestCase } from "vitest/node";

export default class RetryReporter implements Reporter {
  private readonly retried: string[] = [];

  onTestCaseResult(test: TestCase): void {
    const { retryCount } = test.diagnostic() ?? { retryCount: 0 };
    if (retryCount > 0 && test.result().state === "passed")
      this.retried.push(`${test.module.moduleId.replace(process.cwd() + "/", "")} > ${test.fullName}`);
  }

  onTestRunEnd(): void {
    if (!this.retried.length) return;
    process.stdout.write(`\nPassed only on a retry (flaky: look into these):\n`);
    for (const name of this.retried) process.stdout.write(`  RETRIED ${name}\n`);
  }
}
