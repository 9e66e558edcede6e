import type { RunProgress } from '../lambdas/core/jobs/full-run';

/** A bar redrawn in place on a terminal; otherwise a plain line each quarter of the segments (logs, CI). */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): { update(progress: RunProgress): void; done(): void } {
  let lastSegments = -1;
  let drawn = false;
  return {
    update(progress) {
      const text = `${progress.segmentsDone}/${progress.segmentsTotal} segments · ${progress.paymentsScanned} payments · ${progress.usersScanned} users`;
      if (stream.isTTY) {
        const width = 24;
        const filled = Math.round((progress.segmentsDone / Math.max(1, progress.segmentsTotal)) * width);
        stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${text}`);
        drawn = true;
      } else if (progress.segmentsDone > 0 && progress.segmentsDone !== lastSegments && progress.segmentsDone % Math.ceil(progress.segmentsTotal / 4) === 0) {
        lastSegments = progress.segmentsDone;
        stream.write(`progress: ${text}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\n');
    },
  };
}
