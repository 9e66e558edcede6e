import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnResource } from 'aws-cdk-lib';
import { AssetManifestArtifact } from 'aws-cdk-lib/cx-api';
import type { IConstruct } from 'constructs';
import { addPaymentSync } from '../../lib/app';
import type { PaymentSyncStack } from '../../lib/payment-sync-stack';

export interface SynthesizedStack {
  readonly app: App;
  readonly stack: PaymentSyncStack;
  readonly template: Template;
}

/**
 * Builds the app exactly as bin/app.ts does (cdk-nag included, so an unacknowledged
 * finding fails right here) and synthesizes it with real esbuild bundling.
 */
export function synthesize(context: Record<string, unknown>): SynthesizedStack {
  const app = new App({ context, outdir: mkdtempSync(join(tmpdir(), 'payment-sync-cdk-')) });
  const stack = addPaymentSync(app);
  return { app, stack, template: Template.fromStack(stack) };
}

/** The bundles are megabytes: do not leave them in the temporary folder. */
export function removeOutput(synthesized: SynthesizedStack | undefined): void {
  if (synthesized) rmSync(synthesized.app.outdir, { recursive: true, force: true });
}

export function logicalId(construct: IConstruct): string {
  return Stack.of(construct).getLogicalId(construct.node.defaultChild as CfnResource);
}

/**
 * The synthesized asset folder of a function's code: the S3 key of its Code is the asset's
 * hash, and the stack's asset manifest gives the folder that hash was staged from.
 */
export function assetDirectoryOf(synthesized: SynthesizedStack, fn: IConstruct): string {
  const key: unknown = synthesized.template.toJSON().Resources[logicalId(fn)].Properties.Code.S3Key;
  if (typeof key !== 'string' || !key.endsWith('.zip')) throw new Error(`not a file asset key: ${JSON.stringify(key)}`);
  const artifact = synthesized.app.synth().getStackArtifact(synthesized.stack.artifactId);
  const manifest = artifact.dependencies.find(AssetManifestArtifact.isAssetManifestArtifact);
  const source = manifest?.contents.files?.[key.slice(0, -'.zip'.length)]?.source;
  if (!source?.path) throw new Error(`no file asset ${key} in the asset manifest of ${artifact.id}`);
  return join(synthesized.app.outdir, source.path);
}

export interface Statement {
  readonly Effect: string;
  readonly Action: string | string[];
  readonly Resource: unknown;
  readonly Condition?: Record<string, Record<string, unknown>>;
  readonly Sid?: string;
}

/** Every statement of every policy attached to a role (inline, attached, or the role's own). */
export function statementsOf(template: Template, roleLogicalId: string): Statement[] {
  const role = template.toJSON().Resources[roleLogicalId];
  const inline = (role.Properties.Policies ?? []).flatMap((policy: { PolicyDocument: { Statement: Statement[] } }) => policy.PolicyDocument.Statement);
  const attached = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy) =>
    (policy.Properties.Roles as unknown[]).some((ref) => JSON.stringify(ref) === JSON.stringify({ Ref: roleLogicalId })),
  );
  return [...inline, ...attached.flatMap((policy) => policy.Properties.PolicyDocument.Statement as Statement[])];
}

export function actionsOf(statements: readonly Statement[]): string[] {
  return [...new Set(statements.flatMap((statement) => [statement.Action].flat()))].sort();
}
