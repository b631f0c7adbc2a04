import { actionRegistry } from '../agents/registry.js';
import { durationToMs } from '../core/duration.js';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import { defaults as spinDefaults } from '../core/defaults.js';
import { findCycles } from './cycle-detection.js';
import { topologicalOrder } from './topological-order.js';
import type { Finding } from './finding.js';
import { schemaFindings } from './schema-findings.js';
import { didYouMean } from './suggest.js';
import type { Validators } from './validators.js';

type Json = Record<string, unknown>;

/**
 * Checks a parsed package document: its structure against the package schema, each command's
 * resource, action and params against the action registry, and its `needs` as a graph (unknown
 * ids, self-references, cycles). Returns every finding, and the package when there are none.
 */
export function checkPackageDocument(
  document: unknown,
  file: string,
  validators: Validators,
): { findings: Finding[]; package?: PackageSpec } {
  const findings = schemaFindings(validators.validatePackage(document), document);
  if (!isObject(document) || !isObject(document['commands'])) return { findings };

  const defaults = isObject(document['defaults']) ? document['defaults'] : {};
  const defaultTimeout = durationToMs(defaults['timeout']) ?? spinDefaults.command.timeoutMs;
  const defaultRetries =
    typeof defaults['retries'] === 'number' ? defaults['retries'] : spinDefaults.command.retries;
  const defaultNode =
    typeof defaults['node'] === 'string' ? defaults['node'] : spinDefaults.command.node;

  const entries = Object.entries(document['commands']);
  const ids = new Set(entries.map(([id]) => id));
  const commands: CommandSpec[] = [];
  for (const [id, raw] of entries) {
    if (!isObject(raw)) continue;
    const at = ['commands', id];
    const resource = raw['resource'];
    const action = raw['action'];
    const params = isObject(raw['params'])
      ? raw['params']
      : raw['params'] === undefined
        ? {}
        : undefined;
    const needs = Array.isArray(raw['needs'])
      ? raw['needs'].filter((n): n is string => typeof n === 'string')
      : [];
    findings.push(...actionFindings(resource, action, params, at, validators));
    needs.forEach((need, i) => {
      if (need === id) {
        findings.push({
          path: [...at, 'needs', i],
          atKey: false,
          message: `command '${id}' needs itself (cycle ${id} → ${id})`,
          reason: 'self-need',
        });
      } else if (!ids.has(need)) {
        findings.push({
          path: [...at, 'needs', i],
          atKey: false,
          message: `unknown command '${need}'${didYouMean(need, ids)}`,
          reason: 'unknown-need',
        });
      }
    });
    if (typeof resource !== 'string' || typeof action !== 'string' || params === undefined)
      continue;
    commands.push({
      id,
      resource,
      action,
      params,
      needs,
      node: typeof raw['node'] === 'string' ? raw['node'] : defaultNode,
      timeoutMs: durationToMs(raw['timeout']) ?? defaultTimeout,
      retries: typeof raw['retries'] === 'number' ? raw['retries'] : defaultRetries,
      ...(raw['replace'] === 'allow' ? { replace: 'allow' as const } : {}),
    });
  }

  // Kahn's order places every command unless there is a cycle; only then look for the cycles.
  const cycles = topologicalOrder(commands).length === commands.length ? [] : findCycles(commands);
  for (const cycle of cycles) {
    const [first, second] = cycle;
    const from = commands.find((c) => c.id === first);
    const index = from?.needs.indexOf(second ?? '') ?? -1;
    findings.push({
      path: index >= 0 ? ['commands', first ?? '', 'needs', index] : ['commands', first ?? ''],
      atKey: false,
      message: `dependency cycle: ${cycle.join(' → ')}`,
      reason: 'cycle',
    });
  }

  if (findings.length > 0 || typeof document['package'] !== 'string') return { findings };
  const description = document['description'];
  const spec: PackageSpec = { name: document['package'], file, commands };
  if (typeof description === 'string') spec.description = description;
  return { findings, package: spec };
}

function actionFindings(
  resource: unknown,
  action: unknown,
  params: Json | undefined,
  at: string[],
  validators: Validators,
): Finding[] {
  if (typeof resource !== 'string' || typeof action !== 'string') return [];
  const actions = actionRegistry.get(resource);
  if (actions === undefined) {
    const known = [...actionRegistry.keys()];
    return [
      {
        path: [...at, 'resource'],
        atKey: false,
        message: `unknown resource '${resource}'; known resources: ${known.join(', ')}${didYouMean(resource, known)}`,
        reason: 'unknown-resource',
      },
    ];
  }
  const spec = actions.get(action);
  if (spec === undefined) {
    const known = [...actions.keys()];
    return [
      {
        path: [...at, 'action'],
        atKey: false,
        message: `unknown action '${action}' of resource ${resource}; known actions: ${known.join(', ')}${didYouMean(action, known)}`,
        reason: 'unknown-action',
      },
    ];
  }
  if (params === undefined) return [];
  return schemaFindings(validators.validateParams(spec, params), params, [...at, 'params']).map(
    (f) => (f.reason === 'schema' ? { ...f, reason: 'params' } : f),
  );
}

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
