import type { RunProgress, RunStage } from './local/run-state-machine';

const STAGE_NAMES: Record<RunStage, string> = { snapshot: 'snapshot', plan: 'join + plan', repair: 'repair' };

/**
 * Items done of the estimate, per stage, with a rate: a bar redrawn in place on a terminal;
 * otherwise one plain line as each stage ends (logs, CI).
 */
export function progressPrinter(stream: NodeJS.WriteStream = process.stderr, now: () => number = performance.now.bind(performance)): { update(progress: RunProgress): void; done(): void } {
  let stage: RunStage | undefined;
  let stageStarted = now();
  let last: RunProgress | undefined;
  let drawn = false;
  const line = (progress: RunProgress): string => {
    const seconds = Math.max(0.001, (now() - stageStarted) / 1000);
    const of = progress.total > 0 ? ` of ~${progress.total.toLocaleString('en-US')}` : '';
    return `${STAGE_NAMES[progress.stage]}: ${progress.done.toLocaleString('en-US')}${of} ${progress.unit} · ${Math.round(progress.done / seconds).toLocaleString('en-US')} ${progress.unit}/s`;
  };
  const endStage = (): void => {
    if (!last) return;
    if (stream.isTTY) stream.write(`\r${line(last)}\x1b[K\n`);
    else stream.write(`progress: ${line(last)}\n`);
    drawn = false;
  };
  return {
    update(progress) {
      if (progress.stage !== stage) {
        endStage();
        stage = progress.stage;
        stageStarted = now();
      }
      last = progress;
      if (!stream.isTTY) return;
      const width = 24;
      const filled = progress.total > 0 ? Math.min(width, Math.round((progress.done / progress.total) * width)) : 0;
      stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${line(progress)}\x1b[K`);
      drawn = true;
    },
    done() {
      if (drawn || !stream.isTTY) endStage();
      last = undefined;
    },
  };
}
