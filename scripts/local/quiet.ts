/**
 * Imported first by local entry points: the shared Powertools logger and metrics read these
 * at import, and the demo's output is for a person, not CloudWatch.
 */
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
// A quiet terminal by default; `DEBUG=true` (also 1, yes) still turns debug lines on: logLevelFrom,
// the one place DEBUG is read, puts it above LOG_LEVEL.
process.env.LOG_LEVEL ??= 'WARN';
