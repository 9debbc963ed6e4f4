// query.mjs runs one SQL statement in an in-memory DuckDB and prints the rows
// as a JSON array of objects. It is the independent reader lablog's tests use
// to check that its Parquet files open in the tools researchers use.
//
//   node query.mjs "SELECT count(*) AS n FROM read_parquet('archive/**/*.parquet')"
//
// Values are made JSON-safe without losing precision or depending on the
// machine's time zone: BIGINTs become numbers when they fit a double exactly
// and strings otherwise; timestamps become UTC ISO 8601 strings with all the
// sub-second digits DuckDB holds (microseconds: "2026-11-26T14:00:00.123456Z");
// BLOBs become base64 strings; lists, arrays and structs are converted
// recursively; anything else prints as DuckDB prints it.
import {
  DuckDBInstance,
  DuckDBArrayValue,
  DuckDBBlobValue,
  DuckDBListValue,
  DuckDBStructValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
} from '@duckdb/node-api';

// iso formats a count of units (perSecond per second, digits sub-second
// digits) since the epoch as UTC; Date alone would drop the microseconds.
function iso(units, perSecond, digits) {
  let secs = units / perSecond;
  let frac = units % perSecond;
  if (frac < 0n) {
    frac += perSecond;
    secs -= 1n;
  }
  const whole = new Date(Number(secs) * 1000).toISOString().slice(0, 19);
  return digits === 0 ? `${whole}Z` : `${whole}.${frac.toString().padStart(digits, '0')}Z`;
}

function plain(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (typeof v !== 'object') return v;
  if (v.isFinite === false) return v.toString(); // 'infinity', '-infinity'
  if (v instanceof DuckDBTimestampTZValue || v instanceof DuckDBTimestampValue) return iso(v.micros, 1000000n, 6);
  if (v instanceof DuckDBTimestampMillisecondsValue) return iso(v.millis, 1000n, 3);
  if (v instanceof DuckDBTimestampSecondsValue) return iso(v.seconds, 1n, 0);
  if (v instanceof DuckDBTimestampNanosecondsValue) return iso(v.nanos, 1000000000n, 9);
  if (v instanceof DuckDBBlobValue) return Buffer.from(v.bytes).toString('base64');
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) return v.items.map(plain);
  if (v instanceof DuckDBStructValue) {
    return Object.fromEntries(Object.entries(v.entries).map(([k, x]) => [k, plain(x)]));
  }
  return v.toString();
}

const sql = process.argv[2];
if (!sql) {
  console.error('usage: node query.mjs <sql>');
  process.exit(2);
}
const instance = await DuckDBInstance.create(':memory:');
const conn = await instance.connect();
try {
  const reader = await conn.runAndReadAll(sql);
  const rows = reader.getRowObjects().map((row) =>
    Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])),
  );
  process.stdout.write(JSON.stringify(rows) + '\n');
} catch (err) {
  console.error(err.message ?? String(err));
  process.exitCode = 1;
} finally {
  conn.closeSync();
  instance.closeSync();
}
