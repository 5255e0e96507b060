/**
 * The reports: escrow coverage, recoveries over time by root cause and path, rotation compliance,
 * disclosures per operator, devices flagged for post-recovery analysis. Disclosures are counted
 * from the audit log, the record of truth, never from a mutable column.
 */
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { AccessScope } from '../access/permissions.js';
import type { DisclosureRow, ReportsRepo } from './reports.repo.js';

const DAY_MS = 86_400_000;
/** Longest period a report covers in one request. */
export const MAX_RANGE_DAYS = 400;

export interface CoverageFigures {
  devices: number;
  devicesWithCurrentKey: number;
  devicesWithoutCurrentKey: number;
  volumes: number;
  volumesWithCurrentKey: number;
  volumesWithoutCurrentKey: number;
  /** Volumes whose only current key was disclosed and waits for rotation (counted as with a key). */
  volumesAwaitingRotation: number;
}

export interface Period {
  from: string;
  to: string;
}

/** The start (Monday, UTC) of the ISO week or the day that `iso` falls in, as YYYY-MM-DD. */
export function periodOf(iso: string, bucket: 'day' | 'week'): string {
  const day = new Date(`${iso.slice(0, 10)}T00:00:00.000Z`);
  if (bucket === 'week') day.setUTCDate(day.getUTCDate() - ((day.getUTCDay() + 6) % 7));
  return day.toISOString().slice(0, 10);
}

/** Where a disclosure came from; rows written before channels were recorded came through the API. */
export function pathOf(details: Record<string, unknown>): string {
  const channel = details.channel;
  return typeof channel === 'string' && channel.length > 0 ? channel.slice(0, 40) : 'api';
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function parseDetails(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function emptyFigures(): CoverageFigures {
  return {
    devices: 0,
    devicesWithCurrentKey: 0,
    devicesWithoutCurrentKey: 0,
    volumes: 0,
    volumesWithCurrentKey: 0,
    volumesWithoutCurrentKey: 0,
    volumesAwaitingRotation: 0,
  };
}

export type ReportsService = ReturnType<typeof createReportsService>;

export function createReportsService(deps: { clock: Clock; reportsRepo: ReportsRepo }) {
  const { clock, reportsRepo: repo } = deps;

  /** `from`/`to` as given (dates or instants), default the last 30 days; bounded. */
  function period(input: { from?: string | undefined; to?: string | undefined }): Period {
    const to = input.to === undefined ? clock.now() : new Date(input.to);
    const from = input.from === undefined ? new Date(to.getTime() - 30 * DAY_MS) : new Date(input.from);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      throw new AppError('VALIDATION_FAILED', '`from` and `to` must be dates or ISO-8601 instants');
    }
    if (from.getTime() >= to.getTime()) throw new AppError('VALIDATION_FAILED', '`from` must be before `to`');
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * DAY_MS) {
      throw new AppError('VALIDATION_FAILED', `A report covers at most ${MAX_RANGE_DAYS} days`);
    }
    return { from: from.toISOString(), to: to.toISOString() };
  }

  /** Disclosures with the root cause from the helpdesk case (linked, or named in the audit details). */
  async function disclosures(organizationId: string, p: Period, scope: AccessScope) {
    const rows = await repo.disclosures(organizationId, p.from, p.to, scope);
    const parsed = rows.map((r) => ({ row: r, details: parseDetails(r.details) }));
    const unlinked = [
      ...new Set(
        parsed
          .filter((x) => x.row.root_cause_class === null && typeof x.details.caseId === 'string')
          .map((x) => x.details.caseId as string),
      ),
    ];
    const causes = new Map(
      (await repo.caseRootCauses(organizationId, unlinked)).map((c) => [c.id, c.root_cause_class]),
    );
    return parsed.map(({ row, details }) => ({
      ...row,
      path: pathOf(details),
      rootCause:
        row.root_cause_class ??
        (typeof details.caseId === 'string' ? causes.get(details.caseId) : undefined) ??
        'unknown',
    }));
  }

  return {
    period,

    async escrowCoverage(organizationId: string, scope: AccessScope) {
      const volumes = await repo.volumeCoverage(organizationId, scope);
      const devices = new Map<string, { volumes: number; covered: number; awaiting: number }>();
      for (const v of volumes) {
        const d = devices.get(v.device_id) ?? { volumes: 0, covered: 0, awaiting: 0 };
        if (v.volume_id !== null) {
          d.volumes += 1;
          d.covered += v.has_current;
          d.awaiting += v.has_current === 1 && v.has_active === 0 ? 1 : 0;
        }
        devices.set(v.device_id, d);
      }
      const add = (f: CoverageFigures, d: { volumes: number; covered: number; awaiting: number }) => {
        // A device counts as covered only when it has volumes and every one of them has a current key.
        const covered = d.volumes > 0 && d.covered === d.volumes;
        f.devices += 1;
        f.devicesWithCurrentKey += covered ? 1 : 0;
        f.devicesWithoutCurrentKey += covered ? 0 : 1;
        f.volumes += d.volumes;
        f.volumesWithCurrentKey += d.covered;
        f.volumesWithoutCurrentKey += d.volumes - d.covered;
        f.volumesAwaitingRotation += d.awaiting;
      };
      const overall = emptyFigures();
      for (const d of devices.values()) add(overall, d);

      const membersOf = new Map<string, Set<string>>();
      for (const pair of await repo.groupDevicePairs(organizationId)) {
        const set = membersOf.get(pair.group_id) ?? new Set<string>();
        set.add(pair.device_id);
        membersOf.set(pair.group_id, set);
      }
      const groups = (await repo.deviceGroups(organizationId)).map((g) => {
        const f = emptyFigures();
        for (const id of membersOf.get(g.id) ?? []) {
          const d = devices.get(id);
          if (d) add(f, d);
        }
        return { deviceGroupId: g.id, name: g.name, ...f };
      });
      return { generatedAt: clock.now().toISOString(), overall, groups };
    },

    async recoveries(organizationId: string, p: Period, bucket: 'day' | 'week', scope: AccessScope) {
      const rows = await disclosures(organizationId, p, scope);
      const byPath: Record<string, number> = {};
      const byRootCause: Record<string, number> = {};
      const series = new Map<string, { period: string; path: string; rootCause: string; count: number }>();
      for (const r of rows) {
        byPath[r.path] = (byPath[r.path] ?? 0) + 1;
        byRootCause[r.rootCause] = (byRootCause[r.rootCause] ?? 0) + 1;
        const at = periodOf(r.occurred_at, bucket);
        const key = JSON.stringify([at, r.path, r.rootCause]);
        const entry = series.get(key) ?? { period: at, path: r.path, rootCause: r.rootCause, count: 0 };
        entry.count += 1;
        series.set(key, entry);
      }
      const ordered = [...series.values()].sort(
        (a, b) =>
          a.period.localeCompare(b.period) ||
          a.path.localeCompare(b.path) ||
          a.rootCause.localeCompare(b.rootCause),
      );
      return { ...p, bucket, total: rows.length, byPath, byRootCause, series: ordered };
    },

    async disclosuresByOperator(organizationId: string, p: Period, scope: AccessScope) {
      const rows = await disclosures(organizationId, p, scope);
      const operators = new Map<
        string,
        { actorType: string; actorId: string | null; rows: DisclosureRow[]; devices: Set<string> }
      >();
      for (const r of rows) {
        const key = `${r.actor_type}:${r.actor_id ?? ''}`;
        const o = operators.get(key) ?? {
          actorType: r.actor_type,
          actorId: r.actor_id,
          rows: [],
          devices: new Set(),
        };
        o.rows.push(r);
        o.devices.add(r.device_id);
        operators.set(key, o);
      }
      const ids = (type: string) =>
        [...operators.values()]
          .filter((o) => o.actorType === type && o.actorId !== null)
          .map((o) => o.actorId!);
      const names = await repo.actorNames(ids('user'), ids('api-token'));
      const list = [...operators.values()]
        .map((o) => ({
          actorType: o.actorType,
          actorId: o.actorId,
          actorName: o.actorId === null ? null : (names.get(o.actorId) ?? null),
          disclosures: o.rows.length,
          devices: o.devices.size,
          firstAt: o.rows[0]!.occurred_at,
          lastAt: o.rows[o.rows.length - 1]!.occurred_at,
        }))
        .sort(
          (a, b) =>
            b.disclosures - a.disclosures ||
            `${a.actorType}${a.actorId}`.localeCompare(`${b.actorType}${b.actorId}`),
        );
      return { ...p, operators: list };
    },

    async rotationCompliance(organizationId: string, p: Period, scope: AccessScope) {
      const rows = await repo.rotations(organizationId, p.from, p.to, scope);
      const now = clock.now().toISOString();
      let completed = 0;
      let failed = 0;
      let overdue = 0;
      let open = 0;
      const durations: number[] = [];
      for (const r of rows) {
        if (r.status === 'completed') {
          completed += 1;
          if (r.completed_at)
            durations.push((Date.parse(r.completed_at) - Date.parse(r.requested_at)) / 1000);
        } else if (r.status === 'failed') failed += 1;
        // An open request past its deadline is overdue even before the sweep has marked it.
        else if (r.status === 'overdue' || r.due_at < now) overdue += 1;
        else open += 1;
      }
      return {
        ...p,
        requested: rows.length,
        completed,
        failed,
        overdue,
        open,
        medianSecondsToComplete: median(durations),
      };
    },

    async postRecovery(
      organizationId: string,
      windowDays: number,
      minDisclosures: number,
      scope: AccessScope,
    ) {
      const to = clock.now();
      const p = {
        from: new Date(to.getTime() - windowDays * DAY_MS).toISOString(),
        to: new Date(to.getTime() + 1).toISOString(),
      };
      const rows = await disclosures(organizationId, p, scope);
      const byDevice = new Map<string, typeof rows>();
      for (const r of rows) byDevice.set(r.device_id, [...(byDevice.get(r.device_id) ?? []), r]);
      const devices = [...byDevice.values()]
        .filter((list) => list.length >= minDisclosures)
        .map((list) => ({
          deviceId: list[0]!.device_id,
          deviceName: list[0]!.device_name,
          disclosures: list.length,
          firstAt: list[0]!.occurred_at,
          lastAt: list[list.length - 1]!.occurred_at,
          paths: [...new Set(list.map((r) => r.path))].sort(),
          rootCauses: [...new Set(list.map((r) => r.rootCause))].sort(),
        }))
        .sort((a, b) => b.disclosures - a.disclosures || a.deviceName.localeCompare(b.deviceName));
      return { windowDays, minDisclosures, from: p.from, to: to.toISOString(), devices };
    },
  };
}
