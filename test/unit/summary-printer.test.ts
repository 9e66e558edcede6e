import { emptyCounts, emptyIssueCounts, type RunSummary } from '../../lambdas/core/report/report';
import { printSummary } from '../../scripts/summary-printer';

const summary = (dryRun: boolean): RunSummary & Record<string, unknown> => ({
  runId: 'r',
  mode: dryRun ? 'validate' : 'fix',
  dryRun,
  counts: { ...emptyCounts(), usersFixed: 80, coursesAdded: 84, duplicatesRemoved: 13 },
  issues: { ...emptyIssueCounts(), missing: 84, duplicate: 13, unbacked: 6 },
});

describe('the run summary a person reads', () => {
  test('after a fix it says what the run did about each kind it fixes', () => {
    const lines: string[] = [];
    printSummary(summary(false), 'reports/r', (line) => lines.push(line));
    expect(lines.find((line) => line.includes('missing'))).toMatch(/84 granted by this run$/);
    expect(lines.find((line) => line.includes('duplicate '))).toMatch(/13 removed by this run$/);
    expect(lines.find((line) => line.includes('unbacked'))).not.toMatch(/by this run/);
  });

  test('a validation or a dry run claims nothing was done', () => {
    const lines: string[] = [];
    printSummary(summary(true), 'reports/r', (line) => lines.push(line));
    expect(lines.some((line) => line.includes('by this run'))).toBe(false);
    expect(lines[0]).toMatch(/dry run \(nothing written\)/);
  });

  test('a capped scheduled run says scheduled fixes are now held; a held run and a failed run say what to do', () => {
    const lines = (extra: Record<string, unknown>): string[] => {
      const printed: string[] = [];
      printSummary({ ...summary(false), ...extra }, 'reports/r', (line) => printed.push(line));
      return printed;
    };
    expect(lines({ capped: true, trigger: 'schedule' }).join('\n')).toMatch(/CAPPED.*held.*payment-release-hold/);
    expect(lines({ capped: true, trigger: 'manual' }).join('\n')).not.toMatch(/held/);
    expect(lines({ held: true }).join('\n')).toMatch(/HELD: .*payment-release-hold/);
    expect(lines({ status: 'failed', error: 'Error: repair broke' }).join('\n')).toMatch(/FAILED: Error: repair broke; the lock is released/);
    expect(lines({ status: 'completed' }).join('\n')).not.toMatch(/FAILED|HELD|CAPPED/);
  });
});
