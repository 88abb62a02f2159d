interface Waiting<T> {
  item: T;
  size: number;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * Joins what concurrent partition workers hand in into one delivery. A worker enters when its
 * batch starts and leaves when it ends; in between it submits chunks one at a time and waits for
 * the delivery that carried each. A delivery starts once every worker inside has submitted (on the
 * next turn of the event loop, so workers started together meet), or when the next chunk would
 * take it past maxSize. Each worker's promise settles with its delivery: a failed delivery fails
 * every worker in it.
 */
export class Coalescer<T> {
  private active = 0;
  private waiting: Waiting<T>[] = [];
  private waitingSize = 0;
  private scheduled = false;

  constructor(
    private readonly maxSize: number,
    private readonly deliver: (items: T[]) => Promise<void>,
  ) {}

  enter(): void {
    this.active += 1;
  }

  leave(): void {
    this.active -= 1;
    this.schedule();
  }

  submit(item: T, size: number): Promise<void> {
    if (this.waitingSize > 0 && this.waitingSize + size > this.maxSize) this.flush();
    const done = new Promise<void>((resolve, reject) => this.waiting.push({ item, size, resolve, reject }));
    this.waitingSize += size;
    if (this.waitingSize >= this.maxSize) this.flush();
    else this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.waiting.length > 0 && this.waiting.length >= this.active) this.flush();
    });
  }

  private flush(): void {
    const group = this.waiting;
    this.waiting = [];
    this.waitingSize = 0;
    if (group.length === 0) return;
    this.deliver(group.map((entry) => entry.item)).then(
      () => {
        for (const entry of group) entry.resolve();
      },
      (error: unknown) => {
        for (const entry of group) entry.reject(error);
      },
    );
  }
}
