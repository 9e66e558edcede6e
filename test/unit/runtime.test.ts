import { readFileSync } from 'node:fs';
import { join } from 'node:path';

describe('one Node major, local and Lambda', () => {
  test('tests run on Node 24, the major of the nodejs24.x runtime the stack deploys', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(pkg.devDependencies.node).toMatch(/^\^?24\./);
  });
});
