import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CfnResource } from 'aws-cdk-lib';
import { AssetManifestArtifact, BUNDLING_STACKS } from 'aws-cdk-lib/cx-api';
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
 * finding fails right here) and synthesizes it with real esbuild bundling, unless
 * `bundle: false` (for a test that reads the template only: no asset is built).
 */
export function synthesize(context: Record<string, unknown>, options: { readonly bundle?: boolean } = {}): SynthesizedStack {
  const outdir = mkdtempSync(join(tmpdir(), 'payment-sync-cdk-'));
  try {
    const app = new App({ context: options.bundle === false ? { ...context, [BUNDLING_STACKS]: [] } : context, outdir });
    const stack = addPaymentSync(app);
    return { app, stack, template: Template.fromStack(stack) };
  } catch (error) {
    // A synth that fails (a bundle that does not build, a finding) leaves no output behind either.
    rmSync(outdir, { recursive: true, force: true });
    throw error;
  }
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

/** The logical ids of every IAM role of the template. */
export function roleIdsOf(template: Template): string[] {
  return Object.keys(template.findResources('AWS::IAM::Role')).sort();
}

/** Whether an IAM action pattern (wildcards allowed, any case, as IAM reads it) covers an action. */
export function actionCovers(pattern: string, action: string): boolean {
  const regex = pattern
    .split('')
    .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${regex}$`, 'i').test(action);
}

/** The Allow statements that grant `action` (by name or wildcard), on any resource or on those `onResource` accepts. */
export function allowing(statements: readonly Statement[], action: string, onResource: (resource: unknown) => boolean = () => true): Statement[] {
  return statements.filter(
    (statement) =>
      statement.Effect === 'Allow' &&
      [statement.Action].flat().some((pattern) => actionCovers(pattern, action)) &&
      [statement.Resource].flat().some(onResource),
  );
}

/** The resources `action` is allowed on, in statement order. */
export function resourcesAllowed(statements: readonly Statement[], action: string): unknown[] {
  return allowing(statements, action).flatMap((statement) => [statement.Resource].flat());
}

// --- Step Functions definitions ------------------------------------------------------------

export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Record<string, AslState>;
  readonly [key: string]: unknown;
}

export interface AslCatcher {
  readonly ErrorEquals: string[];
  readonly Next: string;
  readonly ResultPath?: string | null;
}

export interface AslRetrier {
  readonly ErrorEquals: string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
}

export interface AslState {
  readonly Type: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Default?: string;
  readonly Resource?: string;
  readonly Catch?: AslCatcher[];
  readonly Retry?: AslRetrier[];
  readonly ItemProcessor?: AslDefinition;
  readonly Iterator?: AslDefinition;
  readonly Branches?: AslDefinition[];
  readonly [key: string]: unknown;
}

/** Names a CloudFormation reference ({ Ref } or { Fn::GetAtt }) that a definition embeds. */
export type TokenNamer = (token: unknown) => string;

/**
 * A state machine's definition from the template: the DefinitionString is an Fn::Join of JSON
 * text and references; each reference is replaced by the namer's placeholder, then parsed.
 */
export function definitionOf(template: Template, machineLogicalId: string, nameToken: TokenNamer): AslDefinition {
  const body: unknown = template.toJSON().Resources[machineLogicalId].Properties.DefinitionString;
  if (typeof body === 'string') return JSON.parse(body) as AslDefinition;
  const [separator, parts] = (body as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return JSON.parse(parts.map((part) => (typeof part === 'string' ? part : nameToken(part))).join(separator)) as AslDefinition;
}

/** Every state of a definition by name, those inside Map item processors and Parallel branches too. */
export function statesOf(definition: AslDefinition): Map<string, AslState> {
  const states = new Map<string, AslState>();
  const visit = (graph: AslDefinition): void => {
    for (const [name, state] of Object.entries(graph.States)) {
      if (states.has(name)) throw new Error(`state ${name} is defined twice`);
      states.set(name, state);
      for (const inner of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])]) if (inner) visit(inner);
    }
  };
  visit(definition);
  return states;
}

/** Every key anywhere in a JSON value: to prove a field is used nowhere in a definition. */
export function keysIn(value: unknown): Set<string> {
  const keys = new Set<string>();
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      for (const [key, inner] of Object.entries(node)) {
        keys.add(key);
        visit(inner);
      }
    }
  };
  visit(value);
  return keys;
}

function valueAt(input: unknown, path: string): { present: boolean; value?: unknown } {
  if (!path.startsWith('$')) throw new Error(`not a path: ${path}`);
  let node: unknown = input;
  for (const key of path.split('.').slice(1)) {
    if (!node || typeof node !== 'object' || !(key in node)) return { present: false };
    node = (node as Record<string, unknown>)[key];
  }
  return { present: true, value: node };
}

type ChoiceRule = Record<string, unknown>;

function ruleMatches(rule: ChoiceRule, input: unknown): boolean {
  if (Array.isArray(rule.And)) return (rule.And as ChoiceRule[]).every((inner) => ruleMatches(inner, input));
  if (Array.isArray(rule.Or)) return (rule.Or as ChoiceRule[]).some((inner) => ruleMatches(inner, input));
  if (rule.Not) return !ruleMatches(rule.Not as ChoiceRule, input);
  const { present, value } = valueAt(input, String(rule.Variable));
  if ('IsPresent' in rule) return present === rule.IsPresent;
  if ('BooleanEquals' in rule) return present && value === rule.BooleanEquals;
  if ('StringEquals' in rule) return present && value === rule.StringEquals;
  if ('NumericEquals' in rule) return present && value === rule.NumericEquals;
  throw new Error(`choice rule not understood by this test: ${JSON.stringify(rule)}`);
}

/** The state a Choice state goes to for this input, as Step Functions evaluates its rules. */
export function choose(state: AslState | undefined, input: unknown): string {
  if (state?.Type !== 'Choice') throw new Error(`not a Choice state: ${JSON.stringify(state)}`);
  const rule = (state.Choices as Array<ChoiceRule & { Next: string }>).find((candidate) => ruleMatches(candidate, input));
  const next = rule?.Next ?? state.Default;
  if (!next) throw new Error(`no choice and no default for ${JSON.stringify(input)}`);
  return next;
}
