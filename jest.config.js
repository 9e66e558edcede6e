/** Tests run on the node@24 devDependency (npm puts node_modules/.bin first on PATH). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': 'ts-jest' },
  maxWorkers: 2,
  testTimeout: 60000,
};
