/** Prometheus text-format metrics of the server: requests, latency, tokens, batches, queue depth. */

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.buckets.forEach((b, i) => { if (v <= b) this.counts[i]!++; });
    this.sum += v;
    this.count++;
  }
  lines(name: string, labels: string): string[] {
    const sep = labels ? `${labels},` : '';
    const out = this.buckets.map((b, i) => `${name}_bucket{${sep}le="${b}"} ${this.counts[i]}`);
    out.push(`${name}_bucket{${sep}le="+Inf"} ${this.count}`);
    const l = labels ? `{${labels}}` : '';
    out.push(`${name}_sum${l} ${this.sum}`, `${name}_count${l} ${this.count}`);
    return out;
  }
}

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, Histogram>();
  private readonly batchSize = new Histogram(BATCH_BUCKETS);
  private promptTokens = 0;
  private completionTokens = 0;
  private lastTokensPerSecond = 0;
  /** Current queue depth, read when the metrics are rendered. */
  queueDepth: () => number = () => 0;

  request(route: string, status: number, seconds: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    let h = this.latency.get(route);
    if (!h) this.latency.set(route, (h = new Histogram(LATENCY_BUCKETS)));
    h.observe(seconds);
  }

  batch(size: number, ms: number, completionTokens?: number): void {
    this.batchSize.observe(size);
    if (completionTokens !== undefined && ms > 0) this.lastTokensPerSecond = (completionTokens * 1000) / ms;
  }

  tokens(prompt: number, completion: number): void {
    this.promptTokens += prompt;
    this.completionTokens += completion;
  }

  render(): string {
    const out: string[] = [];
    out.push('# HELP nodetune_requests_total HTTP requests by route and status.', '# TYPE nodetune_requests_total counter');
    for (const [k, v] of this.requests) out.push(`nodetune_requests_total{${k}} ${v}`);
    out.push('# HELP nodetune_request_duration_seconds Request latency.', '# TYPE nodetune_request_duration_seconds histogram');
    for (const [route, h] of this.latency) out.push(...h.lines('nodetune_request_duration_seconds', `route="${route}"`));
    out.push('# HELP nodetune_batch_size Requests per native call.', '# TYPE nodetune_batch_size histogram');
    out.push(...this.batchSize.lines('nodetune_batch_size', ''));
    out.push('# HELP nodetune_prompt_tokens_total Prompt tokens processed.', '# TYPE nodetune_prompt_tokens_total counter', `nodetune_prompt_tokens_total ${this.promptTokens}`);
    out.push('# HELP nodetune_completion_tokens_total Tokens generated.', '# TYPE nodetune_completion_tokens_total counter', `nodetune_completion_tokens_total ${this.completionTokens}`);
    out.push('# HELP nodetune_tokens_per_second Generated tokens per second of the last generation batch.', '# TYPE nodetune_tokens_per_second gauge', `nodetune_tokens_per_second ${this.lastTokensPerSecond}`);
    out.push('# HELP nodetune_queue_depth Requests waiting for a batch.', '# TYPE nodetune_queue_depth gauge', `nodetune_queue_depth ${this.queueDepth()}`);
    return out.join('\n') + '\n';
  }
}
