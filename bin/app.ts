#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addPaymentSync } from '../lib/app';
import { DeployConfigError } from '../lib/config';

try {
  addPaymentSync(new App());
} catch (error) {
  if (!(error instanceof DeployConfigError)) throw error;
  // A configuration mistake is the operator's to fix: the list of problems, not a stack trace.
  console.error(error.message);
  process.exitCode = 1;
}
