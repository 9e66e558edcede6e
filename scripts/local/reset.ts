import { EnvironmentError } from '../../lambdas/core/errors';
import { LOCAL_DATA_DIR_VARIABLE, localDataDir, resetLocalData, showDir } from './environment';

/**
 * `npm run local:reset`: deletes the embedded default's data (`.local/`), so that the next
 * command or `npm start` creates it again with fresh demo data. Refuses while a command uses it.
 */
async function reset(): Promise<number> {
  const dir = localDataDir();
  if (!dir) {
    console.log(`local:reset: ${LOCAL_DATA_DIR_VARIABLE} keeps the embedded data in memory: nothing on disk to reset`);
    return 0;
  }
  try {
    if (await resetLocalData(dir)) {
      console.log(`local:reset: deleted ${showDir(dir)} (the embedded dynalite's tables and demo data); the next command or npm start creates it again with fresh demo data`);
    } else {
      console.log(`local:reset: nothing to reset: ${showDir(dir)} does not exist (the next command creates it with fresh demo data)`);
    }
    return 0;
  } catch (error) {
    if (!(error instanceof EnvironmentError)) throw error;
    console.error(`local:reset: not reset: ${error.message}`);
    return 2;
  }
}

reset().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`local:reset failed: ${(error as Error).stack ?? error}`);
    process.exitCode = 1;
  },
);
