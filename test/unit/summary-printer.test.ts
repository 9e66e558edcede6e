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
});
