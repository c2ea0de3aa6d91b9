// One worker thread that runs CPU-bound parsing jobs (acorn over a guest's or a model's
// code) off the host's event loop, which serves every runtime and tenant. Jobs run one at a
// time in arrival order, each bounded in time: past it the thread is terminated (the only way
// to stop a parse) and a new one starts for the next job. A bounded number may wait.
import { Worker } from "node:worker_threads";

export class ParseThreadBusyError extends Error {
  constructor(waiting: number) {
    super(`secure-exec: ${waiting} large sources are already waiting to be parsed; try again later`);
    this.name = "ParseThreadBusyError";
  }
}

interface Waiting<Job, Reply> {
  job: Job;
  timeoutMs: number;
  settle(outcome: { reply: Reply } | { error: Error }): void;
}

/** Messages are `{ id, job }` in and `{ id, reply }` out. */
export class ParseThread<Job, Reply> {
  private readonly waiting: Waiting<Job, Reply>[] = [];
  private worker: Worker | undefined;
  private running: { id: number; entry: Waiting<Job, Reply>; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;

  constructor(
    private readonly script: URL,
    private readonly options: { heapMb: number; maxWaiting: number; what: string },
  ) {}

  run(job: Job, timeoutMs: number): Promise<Reply> {
    if (this.waiting.length >= this.options.maxWaiting) return Promise.reject(new ParseThreadBusyError(this.waiting.length));
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.push({ job, timeoutMs, settle: (outcome) => ("reply" in outcome ? resolve(outcome.reply) : reject(outcome.error)) });
      this.dispatch();
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.script, { execArgv: [], resourceLimits: { maxOldGenerationSizeMb: this.options.heapMb } });
    worker.unref();
    worker.on("message", (message: { id: number; reply: Reply }) => {
      if (this.running?.id === message.id) this.finish({ reply: message.reply });
    });
    const lost = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.finish({ error: new Error(`secure-exec: ${this.options.what} failed: ${error.message}`) });
    };
    worker.on("error", lost);
    worker.on("exit", (code) => lost(new Error(`its thread exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private finish(outcome: { reply: Reply } | { error: Error }): void {
    const done = this.running;
    this.running = undefined;
    if (done) {
      clearTimeout(done.timer);
      done.entry.settle(outcome);
    }
    this.worker?.unref();
    this.dispatch();
  }

  private dispatch(): void {
    if (this.running) return;
    const entry = this.waiting.shift();
    if (!entry) return;
    const worker = this.ensureWorker();
    const id = this.nextId++;
    const timer = setTimeout(() => {
      const stuck = this.worker;
      this.worker = undefined;
      this.finish({ error: new Error(`secure-exec: ${this.options.what} took longer than ${entry.timeoutMs} ms`) });
      void stuck?.terminate();
    }, entry.timeoutMs);
    timer.unref();
    this.running = { id, entry, timer };
    worker.ref();
    worker.postMessage({ id, job: entry.job });
  }
}
