/**
 * Prometheus metrics of the server (prom-client): requests, latency, tokens, batches, queue depth. Each server
 * has its own Registry, never prom-client's global one, so several servers in one process count apart.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

export class Metrics {
  /** This server's registry (what `/metrics` renders). */
  readonly registry = new Registry();
  /** Current queue depth, read when the metrics are rendered. */
  queueDepth: () => number = () => 0;
  private lastTokensPerSecond = 0;
  private readonly requests: Counter<'route' | 'status'>;
  private readonly latency: Histogram<'route'>;
  private readonly batchSize: Histogram;
  private readonly promptTokens: Counter;
  private readonly completionTokens: Counter;

  constructor() {
    const registers = [this.registry];
    this.requests = new Counter({ name: 'nodetune_requests_total', help: 'HTTP requests by route and status.', labelNames: ['route', 'status'], registers });
    this.latency = new Histogram({ name: 'nodetune_request_duration_seconds', help: 'Request latency.', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.batchSize = new Histogram({ name: 'nodetune_batch_size', help: 'Requests per native call.', buckets: BATCH_BUCKETS, registers });
    this.promptTokens = new Counter({ name: 'nodetune_prompt_tokens_total', help: 'Prompt tokens processed.', registers });
    this.completionTokens = new Counter({ name: 'nodetune_completion_tokens_total', help: 'Tokens generated.', registers });
    const self = this;
    new Gauge({
      name: 'nodetune_tokens_per_second', help: 'Generated tokens per second of the last generation batch.', registers,
      collect() { this.set(self.lastTokensPerSecond); },
    });
    new Gauge({
      name: 'nodetune_queue_depth', help: 'Requests waiting for a batch.', registers,
      collect() { this.set(self.queueDepth()); },
    });
  }

  request(route: string, status: number, seconds: number): void {
    this.requests.inc({ route, status: String(status) });
    this.latency.observe({ route }, seconds);
  }

  batch(size: number, ms: number, completionTokens?: number): void {
    this.batchSize.observe(size);
    if (completionTokens !== undefined && ms > 0) this.lastTokensPerSecond = (completionTokens * 1000) / ms;
  }

  tokens(prompt: number, completion: number): void {
    this.promptTokens.inc(prompt);
    this.completionTokens.inc(completion);
  }

  /** The Prometheus text format (version 0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of `render()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
