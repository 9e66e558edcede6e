import { progressPrinter } from '../../scripts/progress';

function fakeStream(isTTY: boolean) {
  const written: string[] = [];
  return { stream: { isTTY, write: (text: string) => written.push(text) } as unknown as NodeJS.WriteStream, written };
}

describe('the progress display', () => {
  test('off a terminal: one line per stage with items of the estimate and a rate from the stage start', () => {
    let now = 0;
    const { stream, written } = fakeStream(false);
    const progress = progressPrinter(stream, () => now);
    progress.update({ stage: 'snapshot', done: 0, total: 0, unit: 'items' });
    now = 2000;
    progress.update({ stage: 'snapshot', done: 5000, total: 0, unit: 'items' });
    progress.update({ stage: 'plan', done: 0, total: 1000, unit: 'users' });
    now = 2500;
    progress.update({ stage: 'plan', done: 1000, total: 1000, unit: 'users' });
    progress.done();
    expect(written).toEqual(['progress: snapshot: 5,000 items · 2,500 items/s\n', 'progress: join + plan: 1,000 of ~1,000 users · 2,000 users/s\n']);
  });

  test('on a terminal: a bar redrawn in place, filled by the share done', () => {
    const { stream, written } = fakeStream(true);
    const progress = progressPrinter(stream, () => 1000);
    progress.update({ stage: 'repair', done: 0, total: 10, unit: 'users' });
    progress.update({ stage: 'repair', done: 5, total: 10, unit: 'users' });
    progress.done();
    expect(written[1]).toMatch(/^\r\[#{12}-{12}\] repair: 5 of ~10 users/);
    expect(written.at(-1)).toMatch(/\n$/);
  });
});
