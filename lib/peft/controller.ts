/** The fine-tuning state of one Model: its adapters, the active one, and trainability (Model delegates here). */
import { checkOptionKeys } from '../util/options';
import { TRAINABLE_KEYS } from '../util/option-keys';
import { NodetuneError, check } from '../errors';
import type { NativeModel } from '../native';
import type { NativeTask, ResolvedConfig } from '../models/config';
import { AdapterHost, loadAdapterFiles, saveAdapterFiles } from './files';
import {
  AdapterRecord, BottleneckOptions, LoraOptions, PromptTuningOptions, bottleneckRecord, checkAdapterName, loraRecord, promptRecord,
} from './methods';
import { ModelStructure, modelStructure } from './modules';
import { ParameterSummary, TrainableOptions, TrainablePolicy, summarize, trainableNames } from './trainable';

export class PeftController implements AdapterHost {
  readonly adapters = new Map<string, AdapterRecord>();
  active: string | null = null;

  /** Head weights that were initialised fresh (AutoModel.fromConfig initialises everything; only the head counts). */
  private readonly fresh: string[];

  constructor(readonly native: NativeModel, readonly resolved: ResolvedConfig, readonly task: NativeTask,
    readonly nameOrPath: string | undefined, newlyInitialized: string[]) {
    const head = new Set(native.headNames());
    this.fresh = newlyInitialized.filter((n) => head.has(n));
  }

  structure(): ModelStructure {
    return modelStructure(this.resolved, this.native.parameters(), this.native.headNames());
  }

  private apply(names: Set<string>): void {
    const all = this.native.parameters().map((p) => p.name);
    this.native.setTrainable(all.filter((n) => !names.has(n)), false);
    this.native.setTrainable(all.filter((n) => names.has(n)), true);
  }

  setTrainable(policy: TrainablePolicy, options: TrainableOptions = {}): void {
    check(options && typeof options === 'object', 'setTrainable(policy, options): options must be an object', 'options');
    checkOptionKeys(options, TRAINABLE_KEYS, 'setTrainable()');
    check(options.trainEmbeddings === undefined || typeof options.trainEmbeddings === 'boolean', 'setTrainable(): trainEmbeddings must be a boolean', 'trainEmbeddings');
    this.apply(trainableNames(policy, this.structure(), this.fresh, options));
  }

  /** As PEFT: the base freezes when the first adapter arrives, except a task head (modules_to_save):
   * freshly initialised head weights, and for classification / QA tasks the classifier itself (not BERT's pretrained pooler).
   * Language-model heads (causal-lm, masked-lm) are pretrained and stay frozen, as the rest of the base. */
  private freezeBase(s: ModelStructure): void {
    if (this.adapters.size > 0) return;
    const keep = new Set(this.fresh);
    if (this.task !== 'causal-lm' && this.task !== 'masked-lm' && this.task !== 'base')
      s.head.filter((n) => !n.startsWith(`${this.resolved.native.prefix}.pooler.`)).forEach((n) => keep.add(n));
    this.apply(keep);
  }

  private added(name: string, record: AdapterRecord): void {
    this.adapters.set(name, record);
    if (this.active === null) this.active = name;  // the native side makes the first adapter active too
  }

  addLora(options: LoraOptions, name = 'default'): void {
    checkAdapterName(name, this.adapters);
    const s = this.structure();
    const { record, scale, seed } = loraRecord(options, s);
    if (record.targets.some((t) => s.head.includes(`${t.module}.weight`)) && this.task !== 'causal-lm' && this.task !== 'masked-lm')
      throw new NodetuneError('ERR_ARGUMENT', 'addLora(): the task head trains fully (modules_to_save); do not target it with LoRA', { field: 'targetModules' });
    this.freezeBase(s);
    this.native.addLora(name, { r: record.r, scale, dropout: record.dropout, seed, targets: record.targets });
    this.added(name, record);
  }

  addAdapter(options: BottleneckOptions, name = 'default'): void {
    checkAdapterName(name, this.adapters);
    const s = this.structure();
    const { record, seed } = bottleneckRecord(options, s, this.resolved.native.hiddenSize);
    this.freezeBase(s);
    this.native.addBottleneck(name, { size: record.size, act: record.nonLinearity, seed, sites: record.sites });
    this.added(name, record);
  }

  async addPromptTuning(options: PromptTuningOptions, name = 'default'): Promise<void> {
    checkAdapterName(name, this.adapters);
    if (this.resolved.native.robertaPositions)
      throw new NodetuneError('ERR_STATE', 'addPromptTuning(): not supported for RoBERTa (its positions come from the token ids)');
    const { record, ids, seed } = await promptRecord(options, this.resolved.native.vocabSize, this.resolved.native.hiddenSize);
    checkAdapterName(name, this.adapters);
    const s = this.structure();
    this.freezeBase(s);
    this.native.addPrompt(name, { numVirtualTokens: record.numVirtualTokens, embedding: s.tokenEmbedding, ids, seed });
    this.added(name, record);
  }

  /** The adapter for one call: undefined = the active one, null = none. */
  adapterArg(adapter: string | null | undefined, what: string): string | null | undefined {
    if (adapter === undefined || adapter === null) return adapter;
    if (!this.adapters.has(adapter))
      throw new NodetuneError('ERR_ARGUMENT', `${what}: no adapter named ${JSON.stringify(adapter)} (have: ${[...this.adapters.keys()].join(', ') || 'none'})`, { field: 'adapter' });
    return adapter;
  }

  /** Virtual tokens the call's adapter puts before the input (prompt tuning), else 0. */
  virtualTokens(adapter: string | null | undefined): number {
    const name = adapter === undefined ? this.active : adapter;
    const record = name === null ? undefined : this.adapters.get(name);
    return record?.kind === 'prompt' ? record.numVirtualTokens : 0;
  }

  setActiveAdapter(name: string | null): void {
    this.adapterArg(name, 'setActiveAdapter()');
    this.native.setActiveAdapter(name);
    this.active = name;
  }

  deleteAdapter(name: string): void {
    this.adapterArg(name, 'deleteAdapter()');
    this.native.removeAdapter(name);
    this.adapters.delete(name);
    if (this.active === name) this.active = null;
  }

  private named(name: string | undefined, what: string): string {
    const n = name ?? this.active;
    if (n === null || n === undefined) throw new NodetuneError('ERR_STATE', `${what}: no adapter is active; name one`);
    this.adapterArg(n, what);
    return n;
  }

  mergeAdapter(name?: string): void {
    this.native.mergeAdapter(this.named(name, 'mergeAdapter()'));
  }

  unmergeAdapter(): void {
    this.native.unmergeAdapter();
  }

  parameterSummary(): ParameterSummary {
    return summarize(this.native.parameters(), [...this.adapters.keys()].map((name) => ({ name, params: this.native.adapterParameters(name) })));
  }

  async saveAdapter(dir: string, name?: string): Promise<void> {
    check(typeof dir === 'string' && dir.length > 0, 'saveAdapter(dir): dir must be a non-empty string', 'dir');
    const n = this.named(name, 'saveAdapter()');
    await saveAdapterFiles(this, dir, n, this.adapters.get(n)!);
  }

  async loadAdapter(dir: string, name = 'default'): Promise<void> {
    check(typeof dir === 'string' && dir.length > 0, 'loadAdapter(dir): dir must be a non-empty string', 'dir');
    checkAdapterName(name, this.adapters);
    const s = this.structure();
    const wasEmpty = this.adapters.size === 0;
    const record = await loadAdapterFiles(this, dir, name);
    if (wasEmpty) this.freezeBase(s);
    this.added(name, record);
  }
}
