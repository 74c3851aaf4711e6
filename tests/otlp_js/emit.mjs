// Telemetry as Claude Code (a Node program) exports it: the OpenTelemetry JS
// SDK's LoggerProvider and MeterProvider with the official OTLP http/json
// exporters, configured only by the standard environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT, _HEADERS, _COMPRESSION,
// _METRICS_TEMPORALITY_PREFERENCE...), as Claude Code is.
//
// stdin: a JSON scenario (the test owns the shapes and the assertions):
//   {"resource": {attr: value}, "logger": name, "meter": name,
//    "logs": [{"body": string, "attributes": {...}}],
//    "metrics": [[{"name", "unit"?, "value", "attributes"}, ...], ...]}
// Logs go through a BatchLogRecordProcessor (as Claude Code's), flushed once
// at the end; each metrics round is recorded, then exported (forceFlush).
// Exit status 1, with the exporters' errors on stderr, when any export failed.
import { readFileSync } from "node:fs";

import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BatchLogRecordProcessor, LoggerProvider } from "@opentelemetry/sdk-logs";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

const scenario = JSON.parse(readFileSync(0, "utf8"));
const resource = resourceFromAttributes(scenario.resource ?? {});
const failures = [];
const exports = { logs: 0, metrics: 0 };

// The SDK reports a failed export only to its global error handler: count them here.
function checked(exporter, signal) {
  return new Proxy(exporter, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop !== "export") return typeof value === "function" ? value.bind(target) : value;
      return (items, done) =>
        target.export(items, (result) => {
          if (result.code === 0) exports[signal] += 1;
          else failures.push(`${signal}: ${result.error?.message ?? "export failed"}`);
          done(result);
        });
    },
  });
}

if (scenario.logs?.length) {
  const processor = new BatchLogRecordProcessor({
    exporter: checked(new OTLPLogExporter(), "logs"),
    maxExportBatchSize: 512,
    scheduledDelayMillis: 3_600_000, // one export, at the flush
  });
  const provider = new LoggerProvider({ resource, processors: [processor] });
  const logger = provider.getLogger(scenario.logger ?? "com.anthropic.claude_code.events");
  for (const { body, attributes } of scenario.logs) logger.emit({ body, attributes });
  await provider.forceFlush();
  await provider.shutdown();
}

if (scenario.metrics?.length) {
  const reader = new PeriodicExportingMetricReader({
    exporter: checked(new OTLPMetricExporter(), "metrics"),
    exportIntervalMillis: 3_600_000, // exported at each round's flush only
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  const meter = provider.getMeter(scenario.meter ?? "com.anthropic.claude_code");
  const counters = new Map();
  for (const round of scenario.metrics) {
    for (const { name, unit, value, attributes } of round) {
      if (!counters.has(name)) counters.set(name, meter.createCounter(name, unit ? { unit } : {}));
      counters.get(name).add(value, attributes);
    }
    await provider.forceFlush();
  }
  await provider.shutdown();
}

process.stdout.write(JSON.stringify({ exports, failures }) + "\n");
if (failures.length) {
  process.stderr.write(failures.join("\n") + "\n");
  process.exit(1);
}
