import { type App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { deploymentEnvironment, loadDeployConfig } from './config';
import { PaymentSyncStack } from './payment-sync-stack';

/**
 * Builds the payment-sync stack of the configured stage into an app and checks it with
 * cdk-nag (AWS Solutions) on every synth: an unacknowledged finding fails the synth.
 */
export function addPaymentSync(app: App): PaymentSyncStack {
  const config = loadDeployConfig(app.node);
  const stack = new PaymentSyncStack(app, `PaymentSync-${config.stage}`, {
    config,
    env: deploymentEnvironment(config),
    description: `payment-sync (${config.stage}, ${config.tables.mode} tables): keeps lms-payments and users' purchased courses in agreement`,
  });
  // verbose: a finding explains itself; the acknowledgements (with reasons) are also written
  // into the template's metadata, so a reviewer of `cdk diff` sees them.
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }));
  return stack;
}
