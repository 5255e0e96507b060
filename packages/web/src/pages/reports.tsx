/** Reports with charts (chart.js, no inline styles under the CSP) and CSV downloads from the API. */
import { useEffect, useRef, useState } from 'react';
import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Legend,
  LinearScale,
  Tooltip,
  type ChartConfiguration,
} from 'chart.js';
import { get, qs } from '../api.tsx';
import { Empty, Loaded, useAsync } from '../ui.tsx';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  LinearScale,
  DoughnutController,
  ArcElement,
  Legend,
  Tooltip,
);
// The chart box sizes the canvas (see .chart-box); animation off keeps screenshots and tests steady.
Chart.defaults.maintainAspectRatio = false;
Chart.defaults.animation = false;
Chart.defaults.font.family = 'system-ui, sans-serif';
Chart.defaults.color = '#1a2230';
Chart.defaults.datasets.bar.maxBarThickness = 56;

const PALETTE = [
  '#1d4ed8',
  '#b42318',
  '#15803d',
  '#b45309',
  '#7c3aed',
  '#0e7490',
  '#be185d',
  '#4d7c0f',
  '#475569',
];

function ChartView({ config, label }: { config: ChartConfiguration; label: string }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (!ref.current) return;
    const chart = new Chart(ref.current, config);
    return () => chart.destroy();
  }, [config]);
  return (
    <div className="chart-box">
      <canvas ref={ref} role="img" aria-label={label} />
    </div>
  );
}

interface Coverage {
  overall: {
    devices: number;
    devicesWithCurrentKey: number;
    devicesWithoutCurrentKey: number;
    volumesAwaitingRotation: number;
    volumes: number;
  };
  groups: { name: string; devicesWithCurrentKey: number; devicesWithoutCurrentKey: number }[];
}
interface Recoveries {
  total: number;
  bucket: string;
  byPath: Record<string, number>;
  byRootCause: Record<string, number>;
  series: { period: string; path: string; rootCause: string; count: number }[];
}
interface Compliance {
  requested: number;
  completed: number;
  failed: number;
  overdue: number;
  open: number;
  medianSecondsToComplete: number | null;
}
interface Operators {
  operators: {
    actorType: string;
    actorId: string | null;
    actorName: string | null;
    disclosures: number;
    devices: number;
  }[];
}

function isoDaysAgo(days: number): string {
  return new Date(Date.now() - days * 86400_000).toISOString();
}

function CsvLink({
  report,
  params,
}: {
  report: string;
  params: Record<string, string | number | undefined>;
}) {
  return (
    <a
      className="button secondary small"
      href={`/api/reports/${report}${qs({ ...params, format: 'csv' })}`}
      download
    >
      Download CSV
    </a>
  );
}

export function ReportsPage() {
  const [days, setDays] = useState(30);
  const range = { from: isoDaysAgo(days), to: new Date().toISOString() };
  const coverage = useAsync(() => get<Coverage>('/api/reports/escrow-coverage'), []);
  const recoveries = useAsync(
    () => get<Recoveries>(`/api/reports/recoveries${qs({ ...range, bucket: days > 60 ? 'week' : 'day' })}`),
    [days],
  );
  const compliance = useAsync(() => get<Compliance>(`/api/reports/rotation-compliance${qs(range)}`), [days]);
  const operators = useAsync(
    () => get<Operators>(`/api/reports/disclosures-by-operator${qs(range)}`),
    [days],
  );

  return (
    <>
      <h1>Reports</h1>
      <div className="inline-form">
        <label>
          Period
          <select value={days} onChange={(e) => setDays(Number(e.target.value))}>
            <option value={7}>Last 7 days</option>
            <option value={30}>Last 30 days</option>
            <option value={90}>Last 90 days</option>
            <option value={365}>Last year</option>
          </select>
        </label>
      </div>
      <div className="charts">
        <section className="panel" aria-labelledby="r-coverage">
          <h2 id="r-coverage">Escrow coverage</h2>
          <Loaded state={coverage} what="Loading coverage">
            {(c) => (
              <>
                <p>
                  {c.overall.devicesWithCurrentKey} of {c.overall.devices} devices have a current key;{' '}
                  {c.overall.volumesAwaitingRotation} volume(s) wait for rotation.
                </p>
                <CoverageChart c={c} />
                <CsvLink report="escrow-coverage" params={{}} />
              </>
            )}
          </Loaded>
        </section>
        <section className="panel" aria-labelledby="r-compliance">
          <h2 id="r-compliance">Rotation compliance</h2>
          <Loaded state={compliance} what="Loading rotations">
            {(c) => (
              <>
                <p>
                  {c.completed} of {c.requested} rotations completed
                  {c.medianSecondsToComplete !== null
                    ? `, median ${Math.round(c.medianSecondsToComplete / 60)} min`
                    : ''}
                  .
                </p>
                <ComplianceChart c={c} />
                <CsvLink report="rotation-compliance" params={range} />
              </>
            )}
          </Loaded>
        </section>
        <section className="panel" aria-labelledby="r-recoveries">
          <h2 id="r-recoveries">Recoveries by root cause</h2>
          <Loaded state={recoveries} what="Loading recoveries">
            {(r) =>
              r.total === 0 ? (
                <Empty>No recovery in this period.</Empty>
              ) : (
                <>
                  <p>
                    {r.total} recoveries:{' '}
                    {Object.entries(r.byPath)
                      .map(([k, v]) => `${v} ${k}`)
                      .join(', ')}
                    .
                  </p>
                  <RecoveriesChart r={r} />
                  <CsvLink report="recoveries" params={range} />
                </>
              )
            }
          </Loaded>
        </section>
        <section className="panel" aria-labelledby="r-operators">
          <h2 id="r-operators">Disclosures per operator</h2>
          <Loaded state={operators} what="Loading disclosures">
            {(o) =>
              o.operators.length === 0 ? (
                <Empty>No disclosure in this period.</Empty>
              ) : (
                <>
                  <OperatorsChart o={o} />
                  <CsvLink report="disclosures-by-operator" params={range} />
                </>
              )
            }
          </Loaded>
        </section>
      </div>
      <p>
        <a className="button secondary" href={`/api/reports/post-recovery${qs({ format: 'csv' })}`} download>
          Devices flagged for post-recovery analysis (CSV)
        </a>
      </p>
    </>
  );
}

function CoverageChart({ c }: { c: Coverage }) {
  const [config] = useState<ChartConfiguration>(() => ({
    type: 'bar',
    data: {
      labels: c.groups.length > 0 ? c.groups.map((g) => g.name) : ['All devices'],
      datasets: [
        {
          label: 'With a current key',
          data:
            c.groups.length > 0
              ? c.groups.map((g) => g.devicesWithCurrentKey)
              : [c.overall.devicesWithCurrentKey],
          backgroundColor: PALETTE[2],
        },
        {
          label: 'Without',
          data:
            c.groups.length > 0
              ? c.groups.map((g) => g.devicesWithoutCurrentKey)
              : [c.overall.devicesWithoutCurrentKey],
          backgroundColor: PALETTE[1],
        },
      ],
    },
    options: {
      scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    },
  }));
  return <ChartView config={config} label="Devices with and without a current recovery key, per group" />;
}

function ComplianceChart({ c }: { c: Compliance }) {
  const [config] = useState<ChartConfiguration>(() => ({
    type: 'doughnut',
    data: {
      labels: ['Completed', 'Open', 'Overdue', 'Failed'],
      datasets: [
        {
          data: [c.completed, c.open, c.overdue, c.failed],
          backgroundColor: [PALETTE[2], PALETTE[0], PALETTE[3], PALETTE[1]],
        },
      ],
    },
  }));
  return <ChartView config={config} label="Rotations by state" />;
}

function RecoveriesChart({ r }: { r: Recoveries }) {
  const [config] = useState<ChartConfiguration>(() => {
    const periods = [...new Set(r.series.map((s) => s.period))].sort();
    const causes = [...new Set(r.series.map((s) => s.rootCause))];
    return {
      type: 'bar',
      data: {
        labels: periods,
        datasets: causes.map((cause, i) => ({
          label: cause,
          data: periods.map((p) =>
            r.series.filter((s) => s.period === p && s.rootCause === cause).reduce((n, s) => n + s.count, 0),
          ),
          backgroundColor: PALETTE[i % PALETTE.length],
        })),
      },
      options: {
        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
      },
    };
  });
  return <ChartView config={config} label="Recoveries over time, stacked by root cause" />;
}

function OperatorsChart({ o }: { o: Operators }) {
  const [config] = useState<ChartConfiguration>(() => ({
    type: 'bar',
    data: {
      labels: o.operators.map((x) => x.actorName ?? x.actorId ?? x.actorType),
      datasets: [
        { label: 'Disclosures', data: o.operators.map((x) => x.disclosures), backgroundColor: PALETTE[0] },
      ],
    },
    options: { indexAxis: 'y', scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } },
  }));
  return <ChartView config={config} label="Disclosures per operator" />;
}
