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
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
