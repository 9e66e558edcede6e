/**
 * Imported first by local entry points: the shared Powertools logger and metrics read these
 * at import, and the demo's output is for a person, not CloudWatch.
 */
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.LOG_LEVEL ??= 'WARN';
